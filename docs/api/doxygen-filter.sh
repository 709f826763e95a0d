#!/bin/sh
# Doxygen input filter for include/rendr. The headers document with plain // comments; this
# turns them into Doxygen's /// (and ///< after a member) while Doxygen reads them, so the
# sources keep one comment style. The comment that opens a header (line 2, after
# `#pragma once`) documents the file.
exec sed -E \
  -e '2s|^// ?(.*)$|/// @file\n/// \1|' \
  -e '3,$s|^([[:space:]]*)//([^/!].*)?$|\1///\2|' \
  -e 's|^([^/]*[;,])[[:space:]]+// (.*)$|\1 ///< \2|' \
  "$1"
