#include <mutex>
#include <utility>

#include "carrier/carrier.hpp"
#include "carrier/quic/quic_carrier.hpp"
#include "carrier/tcp/tcp_carrier.hpp"
#include "carrier/udp/udpflow_carrier.hpp"

namespace rendr::carrier {

Registry& Registry::instance() {
  static Registry registry;
  return registry;
}

Registry::Registry() {
  transports_.push_back(std::make_shared<TcpTransport>());
  transports_.push_back(std::make_shared<QuicTransport>());
  transports_.push_back(std::make_shared<udp::UdpflowTransport>());
}

// A transport with the same name as an existing one replaces it.
void Registry::add(std::shared_ptr<Transport> transport) {
  if (!transport) return;
  const std::string name = transport->name();
  std::lock_guard lock(mutex_);
  for (auto& t : transports_) {
    if (t->name() == name) {
      t = std::move(transport);
      return;
    }
  }
  transports_.push_back(std::move(transport));
}

std::shared_ptr<Transport> Registry::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (const auto& t : transports_) {
    if (t->name() == name) return t;
  }
  return nullptr;
}

}  // namespace rendr::carrier
