#include "herd/server/connection_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace herd::server {

namespace {

// "addr:port" of a socket address, in the spelling httplib puts in Request (inet_ntop).
bool endpoint_of(const sockaddr_storage& a, std::string* addr, int* port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    if (!inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf)) return false;
    *port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    if (!inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf)) return false;
    *port = ntohs(v6->sin6_port);
  } else {
    return false;
  }
  *addr = buf;
  return true;
}

bool matches(int fd, const std::string& laddr, int lport, const std::string& raddr, int rport) {
  sockaddr_storage a{};
  socklen_t n = sizeof a;
  std::string addr;
  int port = -1;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0) return false;
  if (!endpoint_of(a, &addr, &port) || addr != raddr || port != rport) return false;
  n = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0) return false;
  return endpoint_of(a, &addr, &port) && addr == laddr && port == lport;
}

}  // namespace

std::optional<ConnectionProbe> ConnectionProbe::find(const std::string& local_addr, int local_port,
                                                     const std::string& remote_addr,
                                                     int remote_port) {
  if (local_port < 0 || remote_port < 0) return std::nullopt;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    char* end = nullptr;
    const std::string name = e.path().filename().string();
    const long fd = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || *end != '\0') continue;
    struct stat st {};
    if (fstat(int(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (matches(int(fd), local_addr, local_port, remote_addr, remote_port))
      return ConnectionProbe(int(fd));
  }
  return std::nullopt;
}

bool ConnectionProbe::peer_closed() const {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 0) < 0) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
  if (!(p.revents & POLLIN)) return false;
  // Readable: either data (a pipelined request, left for httplib) or end of stream (recv 0).
  char c;
  const ssize_t r = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace herd::server
