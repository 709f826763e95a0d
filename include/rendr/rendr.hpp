#pragma once
// rendr — one stable connection over migrating network paths.
#include "rendr/conn.hpp"
#include "rendr/dialer.hpp"
#include "rendr/engine.hpp"
#include "rendr/error.hpp"
#include "rendr/listener.hpp"
#include "rendr/packet_conn.hpp"
#include "rendr/stats.hpp"
#include "rendr/types.hpp"
