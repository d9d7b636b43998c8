// Kernel floor for bench/ws.bench.ts: the same fan-out WITHOUT WebSocket, uWS, the hub or JavaScript.
// One C++ sender thread writes one FRAME_BYTES message to each of COUNT loopback TCP sockets every BATCH_US
// (one send() per socket per batch, TCP_NODELAY, as uWS does when it drains a publish), and a receiver
// process (forked) reads them on one epoll thread exactly as bench/native/ws-client.cc does (same pinning
// and busy-poll options). What this measures is what the box's kernel (loopback TCP, wake-ups, scheduling)
// costs for a 100-way fan-out; the WebSocket row minus this row is what the server software adds.
//
//   tcp-fanout COUNT BATCH_US SECONDS FRAME_BYTES [CLIENT_CPU [SPIN_US]]
//
// Message: u32 batch number, u32 pad, f64 stamp (CLOCK_MONOTONIC µs when the sender started the batch),
// zero padding to FRAME_BYTES. Every socket must see every batch once, in order.
// Prints (stdout) the same lines as ws-client's STOP answer: RESULT, LAST, HIST, HFIRST, HSPREAD, END, where
// RESULT is "<messages received> <errors> <messages> <bytes> <receiver cpu user µs> <receiver cpu sys µs>
// <sender thread cpu µs> <batches>".
#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

double now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

[[noreturn]] void die(const char* m) {
  fprintf(stderr, "tcp-fanout: %s: %s\n", m, strerror(errno));
  printf("FATAL %s\n", m);
  fflush(stdout);
  _exit(1);
}

constexpr uint32_t HIST_EXACT = 1u << 21;
void rec(std::vector<uint64_t>& h, double v) {
  uint64_t x = v < 1 ? 1 : (uint64_t)(v + 0.5);
  h[x < HIST_EXACT ? x : HIST_EXACT - 1]++;
}
void print_hist(FILE* f, const char* tag, const std::vector<uint64_t>& h) {
  fprintf(f, "%s", tag);
  for (uint32_t v = 0; v < HIST_EXACT; v++) if (h[v]) fprintf(f, " %u:%llu", v, (unsigned long long)h[v]);
  fprintf(f, "\n");
}

struct Rx { int fd; std::vector<uint8_t> buf; size_t len = 0; uint32_t next = 0; };
struct Agg { double first = 1e300, last = -1e300; uint32_t n = 0; };

// Receiver: connect COUNT sockets, read every message, write the result lines to `out`.
void receiver(int port, int count, uint32_t batches, size_t frame, int cpu, double spin_us, FILE* out) {
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) fprintf(stderr, "tcp-fanout: cannot pin to CPU %d (%s); running unpinned\n", cpu, strerror(errno));
  }
  int ep = epoll_create1(0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<Rx> rx((size_t)count);
  for (int i = 0; i < count; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (sockaddr*)&sa, sizeof sa) != 0) die("connect");
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    rx[(size_t)i].fd = fd;
    rx[(size_t)i].buf.resize(frame + 65536);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = (uint32_t)i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  std::vector<uint64_t> hist(HIST_EXACT), hfirst(HIST_EXACT), hspread(HIST_EXACT);
  std::vector<Agg> agg(batches);
  uint64_t received = 0, errors = 0, bytes = 0;
  int done = 0;
  epoll_event evs[128];
  double lastEvent = 0;
  while (done < count) {
    int k;
    if (spin_us > 0) {
      for (;;) {
        k = epoll_wait(ep, evs, 128, 0);
        if (k != 0) break;
        if (now_us() - lastEvent > spin_us) { k = epoll_wait(ep, evs, 128, 5000); break; }
      }
      lastEvent = now_us();
    } else {
      k = epoll_wait(ep, evs, 128, 5000);
    }
    if (k < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
    if (k == 0) { errors++; fprintf(stderr, "tcp-fanout: receiver idle for 5 s with %d sockets incomplete\n", count - done); break; }
    for (int e = 0; e < k; e++) {
      Rx& r = rx[evs[e].data.u32];
      for (;;) {
        ssize_t n = recv(r.fd, r.buf.data() + r.len, r.buf.size() - r.len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { errors++; epoll_ctl(ep, EPOLL_CTL_DEL, r.fd, nullptr); break; }
        double t = now_us();
        r.len += (size_t)n;
        bytes += (uint64_t)n;
        size_t off = 0;
        while (r.len - off >= frame) {
          uint32_t b;
          double stamp;
          memcpy(&b, r.buf.data() + off, 4);
          memcpy(&stamp, r.buf.data() + off + 8, 8);
          off += frame;
          if (b != r.next || b >= batches) { errors++; } else {
            double lat = t - stamp;
            rec(hist, lat);
            Agg& a = agg[b];
            if (lat < a.first) a.first = lat;
            if (lat > a.last) a.last = lat;
            if (++a.n == (uint32_t)count) { rec(hfirst, a.first); rec(hspread, a.last - a.first); }
          }
          r.next = b + 1;
          received++;
          if (r.next == batches) done++;
        }
        if (off > 0) { memmove(r.buf.data(), r.buf.data() + off, r.len - off); r.len -= off; }
        if ((size_t)n < 65536) break;
      }
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  fprintf(out, "RX %llu %llu %llu %lld %lld\n", (unsigned long long)received, (unsigned long long)errors, (unsigned long long)bytes,
          (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec, (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
  fprintf(out, "LAST");
  for (auto& r : rx) fprintf(out, " %u", r.next);
  fprintf(out, "\n");
  print_hist(out, "HIST", hist);
  print_hist(out, "HFIRST", hfirst);
  print_hist(out, "HSPREAD", hspread);
  fflush(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || argc > 7) { fprintf(stderr, "usage: tcp-fanout COUNT BATCH_US SECONDS FRAME_BYTES [CLIENT_CPU [SPIN_US]]\n"); return 2; }
  int count = atoi(argv[1]);
  double batch_us = strtod(argv[2], nullptr);
  double seconds = strtod(argv[3], nullptr);
  size_t frame = (size_t)atoi(argv[4]);
  int cpu = argc > 5 ? atoi(argv[5]) : -1;
  double spin = argc > 6 ? strtod(argv[6], nullptr) : 0;
  if (count <= 0 || batch_us <= 0 || seconds <= 0 || frame < 16) { fprintf(stderr, "bad arguments\n"); return 2; }
  uint32_t batches = (uint32_t)(seconds * 1e6 / batch_us);

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (ls < 0 || bind(ls, (sockaddr*)&sa, sizeof sa) != 0 || listen(ls, 1024) != 0) die("listen");
  socklen_t sl = sizeof sa;
  getsockname(ls, (sockaddr*)&sa, &sl);
  int port = ntohs(sa.sin_port);
  int pfd[2];
  if (pipe(pfd) != 0) die("pipe");
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(pfd[0]);
    close(ls);
    FILE* out = fdopen(pfd[1], "w");
    receiver(port, count, batches, frame, cpu, spin, out);
    fclose(out);
    _exit(0);
  }
  close(pfd[1]);
  std::vector<int> fds;
  for (int i = 0; i < count; i++) {
    int fd = accept(ls, nullptr, nullptr);
    if (fd < 0) die("accept");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fds.push_back(fd);  // blocking sends: a full socket buffer would stall the sender, and show in the figures
  }
  std::vector<uint8_t> msg(frame, 0);
  usleep(200000);  // let the receiver settle in epoll_wait
  rusage r0{}, r1{};
  getrusage(RUSAGE_THREAD, &r0);
  double t0 = now_us() + 1000;
  for (uint32_t b = 0; b < batches; b++) {
    double due = t0 + b * batch_us;
    double w = due - now_us();
    if (w > 0) {
      timespec ts{(time_t)(w / 1e6), (long)((w - (double)(time_t)(w / 1e6) * 1e6) * 1000)};
      nanosleep(&ts, nullptr);
    }
    double stamp = now_us();
    memcpy(msg.data(), &b, 4);
    memcpy(msg.data() + 8, &stamp, 8);
    for (int fd : fds) {
      size_t off = 0;
      while (off < frame) {
        ssize_t n = send(fd, msg.data() + off, frame - off, MSG_NOSIGNAL);
        if (n < 0) { if (errno == EINTR) continue; die("send"); }
        off += (size_t)n;
      }
    }
  }
  getrusage(RUSAGE_THREAD, &r1);
  long long sender = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000LL + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec)
                   + (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000LL + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
  // relay the receiver's lines, with the sender's figures added to the RESULT line
  FILE* in = fdopen(pfd[0], "r");
  std::string line;
  int c;
  while ((c = fgetc(in)) != EOF) {
    if (c != '\n') { line.push_back((char)c); continue; }
    if (line.compare(0, 3, "RX ") == 0) {
      unsigned long long rcv, err, bytes;
      long long u, s;
      sscanf(line.c_str() + 3, "%llu %llu %llu %lld %lld", &rcv, &err, &bytes, &u, &s);
      printf("RESULT %llu %llu %llu %llu %lld %lld %lld %u\n", rcv, err, rcv, bytes, u, s, sender, batches);
    } else {
      printf("%s\n", line.c_str());
    }
    line.clear();
  }
  int st = 0;
  waitpid(child, &st, 0);
  for (int fd : fds) close(fd);
  printf("END\n");
  fflush(stdout);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
