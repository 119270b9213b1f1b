// Whether the client of a non-streaming request is still connected. cpp-httplib 0.11 (Debian
// 12's) gives a handler no access to its socket, and a non-streaming handler writes nothing
// until the answer is complete, so a client that gives up would keep its sequences generating.
// The probe finds the connection's socket by its address 4-tuple (which identifies one TCP
// connection) among this process's descriptors, and asks the kernel whether the peer has
// closed its side. Streaming responses need none of this: httplib's sink reports a closed peer.
#pragma once

#include <optional>
#include <string>

namespace herd::server {

class ConnectionProbe {
 public:
  // The socket whose local and peer addresses are these; nullopt when none matches (then the
  // caller simply cannot tell, and the request runs to its end as before).
  static std::optional<ConnectionProbe> find(const std::string& local_addr, int local_port,
                                             const std::string& remote_addr, int remote_port);
  // True once the peer has closed (or reset) the connection. Never blocks, never reads data:
  // a pipelined next request stays in the socket for httplib.
  bool peer_closed() const;
  int fd() const { return fd_; }

 private:
  explicit ConnectionProbe(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace herd::server
