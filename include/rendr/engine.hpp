#pragma once
// rendr::Engine — the Asio io_context that runs rendr's carriers (sockets) and timers.
//
// Threading model
//  - Every flow, listener and carrier belongs to one Engine, i.e. one io_context. The sockets'
//    completion handlers, the flows' timers and Conn::on_migrate callbacks run on the threads
//    that run that io_context ("engine threads"); nothing else in rendr starts threads.
//  - An Engine either owns its io_context and runs it on `threads` threads of its own
//    (Engine(unsigned)), or wraps the application's io_context (Engine(asio::io_context&)): then
//    rendr starts no thread and the application's own io_context::run() calls drive rendr too.
//    With one application thread running that context, a coroutine echo over a Conn never
//    changes threads: socket reads, the flow's protocol work and the completion all run there.
//  - Conn, Listener and Dialer methods may be called from any thread. Their blocking forms
//    (Dialer::dial, Listener::accept, Conn::read_some/write_some) must not be called on an engine
//    thread: they would wait for work only that thread can do, so they fail at once with
//    errc::blocking_call_on_engine_thread. Use the async forms there.
//  - Async operations complete on the completion handler's associated executor (Asio's rule),
//    by default the Engine's executor; never inline inside the initiating call.
#include <memory>

#include "rendr/asio.hpp"

#include "rendr/stats.hpp"

namespace rendr {

// Runs rendr's I/O: an io_context of its own on its own threads, or the application's (see the
// threading model above).
class Engine {
 public:
  // Owns an io_context and starts `threads` I/O threads at once.
  explicit Engine(unsigned threads = 1);
  // Uses the application's io_context: starts no thread; the application runs `context` (from
  // one thread or several) and keeps it alive for as long as any rendr object created on this
  // engine (Conn, Listener) exists. Flows stay registered with the context itself (an Asio
  // service), so this Engine object may be destroyed before them.
  explicit Engine(asio::io_context& context);
  // Own threads: lets flows that are closing finish their close handshake (bounded, a few
  // seconds), then stops and joins the threads. Application context: does nothing; closing
  // flows finish while the application keeps running its context, and whatever is left is
  // released when the io_context is destroyed.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The io_context this engine runs on (its own or the application's).
  asio::io_context& context();
  // That io_context's executor: what Conn::get_executor() returns for its flows.
  asio::any_io_executor executor();
  // A snapshot of every flow on this engine's io_context and the totals of those that ended.
  // Any thread may call it; it takes each live flow's lock in turn, never all at once.
  EngineStats stats() const;

  // The process-wide engine, started on first use with one I/O thread.
  static Engine& default_engine();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rendr
