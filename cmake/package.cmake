# The installable package: one librendr (static and shared) made of the internal layer archives,
# the public headers, a CMake package (find_package(rendr CONFIG) -> rendr::rendr, and
# rendr::rendr_static) and rendr.pc. Included from the top-level CMakeLists.txt after the layers.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Everything a program linking rendr needs, lowest layer first.
set(RENDR_LAYER_LIBRARIES rendr_wire rendr_core rendr_carrier rendr_runtime)
# The shared library is linked from the same objects.
set_target_properties(${RENDR_LAYER_LIBRARIES} PROPERTIES POSITION_INDEPENDENT_CODE ON)

set(RENDR_PACKAGE_LIB_DIR ${CMAKE_BINARY_DIR}/lib)

# librendr.so: every layer archive whole; --no-undefined proves it is complete. (CMake wants one
# source file of its own: an empty one.)
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/package/rendr_shared.cpp
     CONTENT "// librendr.so is linked from the layer archives.\n")
add_library(rendr_shared SHARED ${CMAKE_BINARY_DIR}/package/rendr_shared.cpp)
# (Named as files: CMake refuses $<LINK_LIBRARY:WHOLE_ARCHIVE> for archives that also come in
# through each other's usage requirements.)
set(layer_files)
foreach(layer ${RENDR_LAYER_LIBRARIES})
  list(APPEND layer_files $<TARGET_FILE:${layer}>)
endforeach()
add_dependencies(rendr_shared ${RENDR_LAYER_LIBRARIES})
target_link_libraries(rendr_shared PRIVATE -Wl,--whole-archive ${layer_files} -Wl,--no-whole-archive
                                           OpenSSL::Crypto PkgConfig::NGTCP2 Threads::Threads)
target_link_options(rendr_shared PRIVATE LINKER:--no-undefined)
set_target_properties(rendr_shared PROPERTIES OUTPUT_NAME rendr VERSION ${PROJECT_VERSION}
                      SOVERSION ${PROJECT_VERSION_MAJOR}
                      LIBRARY_OUTPUT_DIRECTORY ${RENDR_PACKAGE_LIB_DIR})

# librendr.a: the layer archives merged into one (an ar MRI script), so a consumer links one file.
set(RENDR_STATIC_ARCHIVE ${RENDR_PACKAGE_LIB_DIR}/librendr.a)
set(mri "create ${RENDR_STATIC_ARCHIVE}\n")
foreach(layer ${RENDR_LAYER_LIBRARIES})
  string(APPEND mri "addlib $<TARGET_FILE:${layer}>\n")
endforeach()
string(APPEND mri "save\nend\n")
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/rendr_static.mri CONTENT "${mri}")
add_custom_command(
  OUTPUT ${RENDR_STATIC_ARCHIVE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${RENDR_PACKAGE_LIB_DIR}
  COMMAND ${CMAKE_COMMAND} -E rm -f ${RENDR_STATIC_ARCHIVE}
  COMMAND sh -c "\"${CMAKE_AR}\" -M < \"${CMAKE_BINARY_DIR}/rendr_static.mri\""
  COMMAND ${CMAKE_RANLIB} ${RENDR_STATIC_ARCHIVE}
  DEPENDS ${RENDR_LAYER_LIBRARIES} ${CMAKE_BINARY_DIR}/rendr_static.mri
  COMMENT "Merging the layer archives into librendr.a"
  VERBATIM)
add_custom_target(rendr_static ALL DEPENDS ${RENDR_STATIC_ARCHIVE})

# What the public headers need from a consumer's compiler (the Asio configuration is ABI).
get_target_property(RENDR_ASIO_DEFINITIONS rendr_asio INTERFACE_COMPILE_DEFINITIONS)
list(JOIN RENDR_ASIO_DEFINITIONS " -D" RENDR_PC_DEFINITIONS)
set(RENDR_PC_DEFINITIONS "-D${RENDR_PC_DEFINITIONS}")
if(RENDR_ASIO STREQUAL "boost")
  set(RENDR_ASIO_DESCRIPTION "Boost.Asio")
else()
  set(RENDR_ASIO_DESCRIPTION "standalone Asio")
endif()

# Both files find the install prefix relative to themselves: `cmake --install --prefix DIR`
# works anywhere.
set(RENDR_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rendr)
set(RENDR_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH RENDR_CMAKE_TO_PREFIX /prefix/${RENDR_CMAKE_DIR} /prefix)
file(RELATIVE_PATH RENDR_PC_TO_PREFIX /prefix/${RENDR_PC_DIR} /prefix)
set(RENDR_SHARED_FILE librendr.so.${PROJECT_VERSION})
set(RENDR_SHARED_SONAME librendr.so.${PROJECT_VERSION_MAJOR})
configure_file(${PROJECT_SOURCE_DIR}/cmake/rendrConfig.cmake.in
               ${CMAKE_BINARY_DIR}/package/rendrConfig.cmake @ONLY)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/package/rendrConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
configure_file(${PROJECT_SOURCE_DIR}/cmake/rendr.pc.in ${CMAKE_BINARY_DIR}/package/rendr.pc @ONLY)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/rendr DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS rendr_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${RENDR_STATIC_ARCHIVE} DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_BINARY_DIR}/package/rendrConfig.cmake
              ${CMAKE_BINARY_DIR}/package/rendrConfigVersion.cmake DESTINATION ${RENDR_CMAKE_DIR})
install(FILES ${CMAKE_BINARY_DIR}/package/rendr.pc DESTINATION ${RENDR_PC_DIR})
if(TARGET rendr_cli)
  install(TARGETS rendr_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
