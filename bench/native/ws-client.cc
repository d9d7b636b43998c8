// Native WebSocket load client for bench/ws.bench.ts (issue 5): N connections on one epoll thread, in a
// separate process, so the clients' CPU does not sit on the server's event loop the way 100 `ws` clients
// in worker threads of the bench process do. Built by the bench with `g++ -O2 -std=c++17` into a temp dir.
//
//   ws-client HOST PORT PATH COUNT SYMBOL CLOCK_OFFSET_US [CPU [SPIN_US]]
//
// CPU ≥ 0 pins the client to that CPU (sched_setaffinity); SPIN_US > 0 keeps polling (epoll_wait with a
// zero timeout) for that long after the last event before sleeping in epoll_wait again (adaptive busy
// polling, as latency-sensitive bots do). Both off by default (-1, 0).
//
// Each connection: RFC 6455 client handshake (random Sec-WebSocket-Key, Sec-WebSocket-Accept checked
// against SHA-1 + base64 of key + GUID), then one masked text frame {"op":"subscribe",...,"channels":
// ["trades"]}. Server frames: unmasked (a masked one is a protocol error), 7/16/64-bit lengths,
// fragmented messages (continuation frames) reassembled, ping answered with a masked pong carrying the
// same payload, close answered and counted as an error (the bench never closes a client on purpose).
// Binary messages are tickpipe.wire Frames (schemas/wire.fbs, FlatBuffers): the reader below follows
// root offset -> Frame table -> vtable -> payload (union type 1 = TickBatch) -> ticks vector of 56-byte
// Tick structs, every offset bounds-checked, and reads each tick's ts_micros (offset 0) and seq (offset 32).
//
// Checks: every client must see seq 1, 2, 3, ... each exactly once, in order (any other seq is an error).
// Latency per tick = now − ts_micros, where now = CLOCK_MONOTONIC µs + CLOCK_OFFSET_US: the bench passes
// the offset between its producer's clock (performance.timeOrigin + performance.now(), i.e. libuv's
// CLOCK_MONOTONIC shifted to Unix µs) and CLOCK_MONOTONIC, so both ends read the same clock.
//
// Control over stdin/stdout, one line each:
//   out "READY <n>"               every connection got {"type":"subscribed"}
//   in  "PROGRESS" -> out "PROGRESS <ticks received>"
//   in  "STOP"     -> out "RESULT <received> <errors> <frames> <bytes> <cpu user µs> <cpu sys µs> <min frames/client> <max frames/client>"
//                     "LAST <last seq of client 0> <client 1> ..."
//                     "HIST <µs>:<count> ..."   (latency histogram, 1 µs buckets)
//                     "HFIRST ..." "HSPREAD ..." per batch (same seq in every connection): latency of the first
//                     connection to receive it, and last − first receipt (the fan-out spread), same format
//                     "END", then exit 0
//   out "FATAL <message>" on setup failure (then exit 1); protocol errors go to stderr and count as errors.
//
// End-to-end mode (environment WS_CLIENT_E2E=1, bench/e2e): SYMBOL is a comma-separated list (all subscribed),
// frames may be binary or JSON (the PATH's format), and every connection keeps per symbol id: ticks, Σ round(price
// / 0.25) × size, the first and last seq and seq breaks (the first seq of a symbol may be anything; each next one
// must be the previous + 1). Latency goes to HISTALL for every tick and to HIST only for ticks whose ts_micros is
// at or after the start of the measured window, given on stdin as "FROM <unix µs>" (none before it).
// STOP then also prints, before END, one line per connection:
//   "SYMS <conn> <closed 0|1> <symbol id>:<ticks>:<sum>:<first seq>:<last seq>:<breaks> ..."   and "HISTALL ...".
// JSON tick batches are read by key ("symbolId", "seq", "tsMicros", "price", "size" in the hub's key order).
#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <cmath>
#include <fcntl.h>
#include <sched.h>
#include <map>
#include <unordered_map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

// ---- SHA-1 and base64 (handshake only) ------------------------------------------------------------

struct Sha1 {
  uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }
  void block(const uint8_t* p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
      uint32_t f, k;
      if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999u; }
      else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1u; }
      else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDCu; }
      else { f = b ^ c ^ d; k = 0xCA62C1D6u; }
      uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
  }
  void digest(const std::string& msg, uint8_t out[20]) {
    std::string m = msg;
    uint64_t bits = (uint64_t)msg.size() * 8;
    m.push_back((char)0x80);
    while (m.size() % 64 != 56) m.push_back(0);
    for (int i = 7; i >= 0; i--) m.push_back((char)(bits >> (8 * i)));
    for (size_t i = 0; i < m.size(); i += 64) block((const uint8_t*)m.data() + i);
    for (int i = 0; i < 5; i++) { out[4 * i] = h[i] >> 24; out[4 * i + 1] = h[i] >> 16; out[4 * i + 2] = h[i] >> 8; out[4 * i + 3] = h[i]; }
  }
};

std::string base64(const uint8_t* p, size_t n) {
  static const char* T = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    o.push_back(T[(v >> 18) & 63]);
    o.push_back(T[(v >> 12) & 63]);
    o.push_back(i + 1 < n ? T[(v >> 6) & 63] : '=');
    o.push_back(i + 2 < n ? T[v & 63] : '=');
  }
  return o;
}

// ---- clock, random, histogram ---------------------------------------------------------------------

double g_offset_us = 0;
inline double now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3 + g_offset_us;
}

uint64_t g_rng = 0x9E3779B97F4A7C15ull;
uint32_t rnd() {  // xorshift64*, seeded from the clock and pid
  g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 2685821657736338717ull) >> 32);
}

constexpr uint32_t HIST_EXACT = 1u << 21;  // 1 µs buckets up to ~2.1 s, rarer values in a map
std::vector<uint64_t> g_hist(HIST_EXACT, 0);
std::map<uint64_t, uint64_t> g_hist_big;
inline void record(double lat) {
  uint64_t v = lat < 1 ? 1 : (uint64_t)(lat + 0.5);
  if (v < HIST_EXACT) g_hist[v]++; else g_hist_big[v]++;
}

// Per batch (keyed by the seq of its first tick): when the first and the last connection received it, so the
// bench can split latency into "server started sending" and "spread across the fan-out".
struct BatchAgg { double first; double last; uint32_t n; };
std::unordered_map<uint32_t, BatchAgg> g_batches;
std::vector<uint64_t> g_hist_first(HIST_EXACT, 0), g_hist_spread(HIST_EXACT, 0);
inline void record_into(std::vector<uint64_t>& h, double v) {
  uint64_t x = v < 1 ? 1 : (uint64_t)(v + 0.5);
  h[x < HIST_EXACT ? x : HIST_EXACT - 1]++;
}

// ---- connections ------------------------------------------------------------------------------------

enum class St { Handshake, Open, Closed };

struct SymStat { uint64_t count = 0; long long sum = 0; uint32_t first = 0, last = 0; uint64_t breaks = 0; bool any = false; };

bool g_e2e = false;
double g_from = 0;  // e2e: start of the measured window (Unix µs); 0 = not started
std::vector<uint64_t> g_hist_all(HIST_EXACT, 0);
std::map<uint64_t, uint64_t> g_hist_all_big;

/** e2e mode: one tick of a connection: totals, seq continuity per symbol, latency (measured window and all). */
inline void e2e_tick(SymStat& s, uint32_t seq, double ts, double price, uint32_t size, double t) {
  if (s.any && seq != s.last + 1) s.breaks++;
  if (!s.any) { s.any = true; s.first = seq; }
  s.last = seq;
  s.count++;
  s.sum += (long long)std::floor(price / 0.25 + 0.5) * (long long)size;  // Math.round(price / TICK) * size
  double lat = t - ts;
  uint64_t v = lat < 1 ? 1 : (uint64_t)(lat + 0.5);
  if (v < HIST_EXACT) g_hist_all[v]++; else g_hist_all_big[v]++;
  if (g_from > 0 && ts >= g_from) record(lat);
}

struct Conn {
  int fd = -1;
  int idx = 0;
  St st = St::Handshake;
  std::string key;  // Sec-WebSocket-Key sent
  std::vector<uint8_t> in;  // received bytes: [inOff, inLen) not parsed yet
  size_t inOff = 0, inLen = 0;
  std::vector<uint8_t> msg;  // fragments of the current data message
  int msgOp = -1;            // opcode of the message being reassembled, -1 none
  std::string out;           // unsent bytes
  uint32_t next = 1;         // next expected seq
  uint64_t frames = 0;
  std::map<uint32_t, struct SymStat> syms;  // e2e mode: per symbol id
  bool subscribed = false;
  bool wantOut = false;
};

std::vector<Conn> g_conns;
int g_ep = -1;
uint64_t g_received = 0, g_errors = 0, g_frames = 0, g_bytes = 0;
int g_acked = 0;
std::string g_symbol;
bool g_ready_sent = false;

void err(Conn& c, const char* what) {
  g_errors++;
  if (g_errors <= 20) fprintf(stderr, "ws-client: connection %d: %s\n", c.idx, what);
}

void update_events(Conn& c) {
  epoll_event ev{};
  ev.events = EPOLLIN | (c.out.empty() ? 0u : (uint32_t)EPOLLOUT);
  ev.data.u32 = (uint32_t)c.idx;
  bool want = !c.out.empty();
  if (want != c.wantOut) {
    c.wantOut = want;
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c.fd, &ev);
  }
}

void flush_out(Conn& c) {
  while (!c.out.empty()) {
    ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) { c.out.erase(0, (size_t)n); continue; }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    err(c, "send failed");
    c.st = St::Closed;
    c.out.clear();
    break;
  }
  update_events(c);
}

// A client frame: FIN set, masked with a fresh random key (RFC 6455 §5.3).
void send_frame(Conn& c, int opcode, const uint8_t* p, size_t n) {
  std::string f;
  f.push_back((char)(0x80 | opcode));
  if (n < 126) f.push_back((char)(0x80 | n));
  else if (n < 65536) { f.push_back((char)(0x80 | 126)); f.push_back((char)(n >> 8)); f.push_back((char)n); }
  else { f.push_back((char)(0x80 | 127)); for (int i = 7; i >= 0; i--) f.push_back((char)((uint64_t)n >> (8 * i))); }
  uint32_t m = rnd();
  uint8_t mk[4] = {(uint8_t)(m >> 24), (uint8_t)(m >> 16), (uint8_t)(m >> 8), (uint8_t)m};
  f.append((const char*)mk, 4);
  for (size_t i = 0; i < n; i++) f.push_back((char)(p[i] ^ mk[i & 3]));
  c.out += f;
  flush_out(c);
}

inline uint32_t rd32(const uint8_t* p) { uint32_t v; memcpy(&v, p, 4); return v; }  // little endian host (x86/arm64 Linux)
inline int32_t rds32(const uint8_t* p) { int32_t v; memcpy(&v, p, 4); return v; }
inline uint16_t rd16(const uint8_t* p) { uint16_t v; memcpy(&v, p, 2); return v; }
inline double rdf64(const uint8_t* p) { double v; memcpy(&v, p, 8); return v; }

// FlatBuffers table field: position of field `id` inside the table at `t`, 0 when absent; false on a bad vtable.
bool field(const uint8_t* b, size_t n, size_t t, int id, size_t& pos) {
  if (t + 4 > n) return false;
  int64_t vt = (int64_t)t - rds32(b + t);
  if (vt < 0 || (size_t)vt + 4 > n) return false;
  uint16_t vsize = rd16(b + vt), tsize = rd16(b + vt + 2);
  if (vsize < 4 || (size_t)vt + vsize > n || t + tsize > n) return false;
  size_t slot = 4 + 2 * (size_t)id;
  uint16_t off = slot + 2 <= vsize ? rd16(b + vt + slot) : 0;
  if (off != 0 && off >= tsize) return false;
  pos = off == 0 ? 0 : t + off;
  return true;
}

// Follow a uoffset field to its target (table, vector or string); false when absent or out of bounds.
bool deref(const uint8_t* b, size_t n, size_t pos, size_t& target) {
  if (pos == 0 || pos + 4 > n) return false;
  uint64_t t = (uint64_t)pos + rd32(b + pos);
  if (t + 4 > n) return false;
  target = (size_t)t;
  return true;
}

void on_binary(Conn& c, const uint8_t* b, size_t n) {
  const double t = now_us();
  if (n < 8 || memcmp(b + 4, "TPW1", 4) != 0) { err(c, "binary message is not a TPW1 frame"); return; }
  size_t frame, pt, pl, batch, tv, vec;
  frame = rd32(b);  // root uoffset at byte 0
  if ((uint64_t)frame + 4 > n) { err(c, "bad root offset"); return; }
  if (!field(b, n, frame, 0, pt) || !field(b, n, frame, 1, pl)) { err(c, "bad Frame table"); return; }
  uint8_t type = pt == 0 ? 0 : b[pt];
  if (type != 1) {  // not a TickBatch: an Error (5) is a failure for this bench, anything else is unexpected
    err(c, type == 5 ? "server sent an Error frame" : "unexpected binary payload");
    return;
  }
  if (!deref(b, n, pl, batch) || !field(b, n, batch, 2, tv) || !deref(b, n, tv, vec)) { err(c, "bad TickBatch"); return; }
  uint32_t count = rd32(b + vec);
  size_t base = vec + 4;
  if ((uint64_t)base + (uint64_t)count * 56 > n) { err(c, "ticks vector past the end of the frame"); return; }
  if (g_e2e) {
    for (uint32_t k = 0; k < count; k++) {
      const uint8_t* tk = b + base + (size_t)k * 56;
      e2e_tick(c.syms[rd16(tk + 52)], rd32(tk + 32), rdf64(tk), rdf64(tk + 8), rd32(tk + 36), t);
    }
    g_received += count;
    c.frames++;
    g_frames++;
    return;
  }
  for (uint32_t k = 0; k < count; k++) {
    const uint8_t* tk = b + base + (size_t)k * 56;
    uint32_t seq = rd32(tk + 32);
    if (seq != c.next) {
      g_errors++;
      if (g_errors <= 20) fprintf(stderr, "ws-client: connection %d: seq %u, expected %u\n", c.idx, seq, c.next);
    }
    c.next = seq + 1;
    record(t - rdf64(tk));
  }
  if (count > 0) {
    uint32_t first = rd32(b + base + 32);
    double ts0 = rdf64(b + base);
    auto it = g_batches.find(first);
    if (it == g_batches.end()) it = g_batches.emplace(first, BatchAgg{t - ts0, t - ts0, 0}).first;
    BatchAgg& a = it->second;
    if (t - ts0 < a.first) a.first = t - ts0;
    if (t - ts0 > a.last) a.last = t - ts0;
    if (++a.n == g_conns.size()) {
      record_into(g_hist_first, a.first);
      record_into(g_hist_spread, a.last - a.first);
      g_batches.erase(it);
    }
  }
  g_received += count;
  c.frames++;
  g_frames++;
}

/** The number after `"key":` at or after `from` in [p, p+n); false when the key is missing or the value is not a number. */
bool json_num(const char* p, size_t n, size_t& from, const char* key, double& out) {
  size_t kl = strlen(key);
  const void* at = memmem(p + from, n - from, key, kl);
  if (at == nullptr) return false;
  size_t v = (size_t)((const char*)at - p) + kl;
  if (v >= n) return false;
  char* end = nullptr;
  out = strtod(p + v, &end);
  if (end == p + v || end > p + n) return false;
  from = (size_t)(end - p);
  return true;
}

/** e2e mode: a JSON tickBatch frame of the hub (schemas/wire.ts frameToJson key order). */
void on_json_batch(Conn& c, const char* p, size_t n, double t) {
  size_t pos = 0;
  const char* ticks = (const char*)memmem(p, n, "\"ticks\":[", 9);
  if (ticks == nullptr) { err(c, "tickBatch without ticks"); return; }
  pos = (size_t)(ticks - p) + 9;
  uint32_t count = 0;
  for (;;) {
    double sid, seq, ts, price, size;
    size_t probe = pos;
    if (!json_num(p, n, probe, "{\"symbolId\":", sid)) break;
    pos = probe;
    if (!json_num(p, n, pos, "\"seq\":", seq) || !json_num(p, n, pos, "\"tsMicros\":", ts) || !json_num(p, n, pos, "\"price\":", price) ||
        !json_num(p, n, pos, "\"size\":", size)) { err(c, "JSON tick without seq, tsMicros, price or size"); return; }
    e2e_tick(c.syms[(uint32_t)sid], (uint32_t)seq, ts, price, (uint32_t)size, t);
    count++;
  }
  g_received += count;
  c.frames++;
  g_frames++;
}

void on_text(Conn& c, const uint8_t* p, size_t n) {
  if (g_e2e && c.subscribed) {
    const double t = now_us();
    const char* cp = (const char*)p;
    if (memmem(cp, n, "\"type\":\"tickBatch\"", 18) != nullptr) { on_json_batch(c, cp, n, t); return; }
    if (memmem(cp, n, "\"type\":\"error\"", 14) != nullptr) { err(c, "server sent an error"); fprintf(stderr, "  %.200s\n", std::string(cp, n < 200 ? n : 200).c_str()); }
    return;  // gap notices, pongs and other control messages: not ticks
  }
  std::string s((const char*)p, n);
  if (s.find("\"type\":\"subscribed\"") != std::string::npos) {
    if (!c.subscribed) { c.subscribed = true; g_acked++; }
    if (g_acked == (int)g_conns.size() && !g_ready_sent) { g_ready_sent = true; printf("READY %d\n", g_acked); fflush(stdout); }
  } else if (s.find("\"type\":\"hello\"") != std::string::npos || s.find("\"type\":\"pong\"") != std::string::npos) {
    // expected control messages
  } else {
    err(c, "unexpected text message");
    fprintf(stderr, "  %.200s\n", s.c_str());
  }
}

void on_open(Conn& c) {
  c.st = St::Open;
  std::string list;
  size_t a = 0;
  for (;;) {  // SYMBOL may be a comma-separated list
    size_t b = g_symbol.find(',', a);
    list += (list.empty() ? "\"" : ",\"") + g_symbol.substr(a, b == std::string::npos ? std::string::npos : b - a) + "\"";
    if (b == std::string::npos) break;
    a = b + 1;
  }
  std::string sub = "{\"op\":\"subscribe\",\"symbols\":[" + list + "],\"channels\":[\"trades\"]}";
  send_frame(c, 1, (const uint8_t*)sub.data(), sub.size());
}

// Parse the handshake response; returns false until the header block is complete.
bool parse_handshake(Conn& c) {
  const uint8_t* b = c.in.data() + c.inOff;
  size_t n = c.inLen - c.inOff;
  std::string h((const char*)b, n);
  size_t end = h.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string head = h.substr(0, end + 2);
  c.inOff += end + 4;
  if (head.compare(0, 12, "HTTP/1.1 101") != 0) {
    err(c, "handshake refused");
    fprintf(stderr, "  %.200s\n", head.c_str());
    c.st = St::Closed;
    return true;
  }
  uint8_t dig[20];
  Sha1().digest(c.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", dig);
  std::string accept = base64(dig, 20);
  std::string lower;
  for (char ch : head) lower.push_back((char)tolower((unsigned char)ch));
  size_t a = lower.find("\r\nsec-websocket-accept:");
  if (a == std::string::npos) { err(c, "no Sec-WebSocket-Accept"); c.st = St::Closed; return true; }
  size_t v = a + 23;
  while (v < head.size() && (head[v] == ' ' || head[v] == '\t')) v++;
  size_t e = head.find("\r\n", v);
  std::string got = head.substr(v, e - v);
  while (!got.empty() && (got.back() == ' ' || got.back() == '\t')) got.pop_back();
  if (got != accept) { err(c, "wrong Sec-WebSocket-Accept"); c.st = St::Closed; return true; }
  on_open(c);
  return true;
}

// Parse as many whole frames as the buffer holds.
void parse_frames(Conn& c) {
  for (;;) {
    if (c.st != St::Open) return;
    const uint8_t* b = c.in.data() + c.inOff;
    size_t n = c.inLen - c.inOff;
    if (n < 2) return;
    bool fin = (b[0] & 0x80) != 0;
    int op = b[0] & 0x0F;
    if ((b[0] & 0x70) != 0) { err(c, "RSV bits set (no extension was negotiated)"); c.st = St::Closed; return; }
    if (b[1] & 0x80) { err(c, "server frame is masked"); c.st = St::Closed; return; }
    uint64_t len = b[1] & 0x7F;
    size_t hl = 2;
    if (len == 126) { if (n < 4) return; len = (uint64_t)b[2] << 8 | b[3]; hl = 4; }
    else if (len == 127) { if (n < 10) return; len = 0; for (int i = 0; i < 8; i++) len = len << 8 | b[2 + i]; hl = 10; }
    if (len > (1ull << 30)) { err(c, "frame too large"); c.st = St::Closed; return; }
    if (n < hl + len) return;
    const uint8_t* p = b + hl;
    c.inOff += hl + (size_t)len;
    if (op >= 8) {  // control: never fragmented, ≤ 125 bytes
      if (!fin || len > 125) { err(c, "bad control frame"); c.st = St::Closed; return; }
      if (op == 9) send_frame(c, 10, p, (size_t)len);  // ping -> pong with the same payload
      else if (op == 8) {
        uint16_t code = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 1005;
        char why[200];
        snprintf(why, sizeof why, "server closed the connection: %u %.*s", code, len > 2 ? (int)len - 2 : 0, (const char*)p + 2);
        err(c, why);
        uint8_t cp[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        send_frame(c, 8, cp, 2);
        c.st = St::Closed;
        return;
      }
      continue;  // pong: nothing to do
    }
    if (op == 0) {
      if (c.msgOp < 0) { err(c, "continuation without a message"); c.st = St::Closed; return; }
      c.msg.insert(c.msg.end(), p, p + len);
    } else if (op == 1 || op == 2) {
      if (c.msgOp >= 0) { err(c, "new message inside a fragmented one"); c.st = St::Closed; return; }
      if (fin) {  // the common case: a whole message in one frame, read in place
        g_bytes += len;
        if (op == 2) on_binary(c, p, (size_t)len); else on_text(c, p, (size_t)len);
        continue;
      }
      c.msgOp = op;
      c.msg.assign(p, p + len);
    } else { err(c, "unknown opcode"); c.st = St::Closed; return; }
    if (fin) {
      g_bytes += c.msg.size();
      if (c.msgOp == 2) on_binary(c, c.msg.data(), c.msg.size()); else on_text(c, c.msg.data(), c.msg.size());
      c.msgOp = -1;
      c.msg.clear();
    }
  }
}

void on_readable(Conn& c) {
  for (;;) {
    // keep the unparsed tail at the front and room for one 64 KiB read after it (no zero-filling per read)
    size_t left = c.inLen - c.inOff;
    if (c.inOff > 0) { if (left > 0) memmove(c.in.data(), c.in.data() + c.inOff, left); c.inLen = left; c.inOff = 0; }
    if (c.in.size() < c.inLen + 65536) c.in.resize(c.inLen + 65536);
    ssize_t r = recv(c.fd, c.in.data() + c.inLen, 65536, 0);
    if (r == 0) { if (c.st != St::Closed) err(c, "connection closed by the server"); c.st = St::Closed; break; }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      err(c, "recv failed"); c.st = St::Closed; break;
    }
    c.inLen += (size_t)r;
    if (c.st == St::Handshake && !parse_handshake(c)) continue;
    parse_frames(c);
    if (r < 65536) break;
  }
  if (c.st == St::Closed && c.fd >= 0) { epoll_ctl(g_ep, EPOLL_CTL_DEL, c.fd, nullptr); close(c.fd); c.fd = -1; }
}

void fatal(const char* m) {
  printf("FATAL %s (%s)\n", m, strerror(errno));
  fflush(stdout);
  exit(1);
}

void result() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  uint64_t mn = UINT64_MAX, mx = 0;
  for (auto& c : g_conns) { if (c.frames < mn) mn = c.frames; if (c.frames > mx) mx = c.frames; }
  if (g_conns.empty()) mn = 0;
  printf("RESULT %llu %llu %llu %llu %lld %lld %llu %llu\n", (unsigned long long)g_received, (unsigned long long)g_errors,
         (unsigned long long)g_frames, (unsigned long long)g_bytes,
         (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec, (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec,
         (unsigned long long)mn, (unsigned long long)mx);
  printf("LAST");
  for (auto& c : g_conns) printf(" %u", c.next - 1);
  printf("\nHIST");
  for (uint32_t v = 0; v < HIST_EXACT; v++) if (g_hist[v]) printf(" %u:%llu", v, (unsigned long long)g_hist[v]);
  for (auto& kv : g_hist_big) printf(" %llu:%llu", (unsigned long long)kv.first, (unsigned long long)kv.second);
  printf("\nHFIRST");
  for (uint32_t v = 0; v < HIST_EXACT; v++) if (g_hist_first[v]) printf(" %u:%llu", v, (unsigned long long)g_hist_first[v]);
  printf("\nHSPREAD");
  for (uint32_t v = 0; v < HIST_EXACT; v++) if (g_hist_spread[v]) printf(" %u:%llu", v, (unsigned long long)g_hist_spread[v]);
  if (g_e2e) {
    printf("\nHISTALL");
    for (uint32_t v = 0; v < HIST_EXACT; v++) if (g_hist_all[v]) printf(" %u:%llu", v, (unsigned long long)g_hist_all[v]);
    for (auto& kv : g_hist_all_big) printf(" %llu:%llu", (unsigned long long)kv.first, (unsigned long long)kv.second);
    for (auto& c : g_conns) {
      printf("\nSYMS %d %d", c.idx, c.st == St::Closed ? 1 : 0);
      for (auto& kv : c.syms) printf(" %u:%llu:%lld:%u:%u:%llu", kv.first, (unsigned long long)kv.second.count, kv.second.sum, kv.second.first, kv.second.last, (unsigned long long)kv.second.breaks);
    }
  }
  printf("\nEND\n");
  fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7 || argc > 9) { fprintf(stderr, "usage: ws-client HOST PORT PATH COUNT SYMBOL CLOCK_OFFSET_US [CPU [SPIN_US]]\n"); return 2; }
  int cpu = argc > 7 ? atoi(argv[7]) : -1;
  double spin_us = argc > 8 ? strtod(argv[8], nullptr) : 0;
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) fprintf(stderr, "ws-client: cannot pin to CPU %d (%s); running unpinned\n", cpu, strerror(errno));
  }
  const char* host = argv[1];
  int port = atoi(argv[2]);
  std::string path = argv[3];
  int count = atoi(argv[4]);
  g_symbol = argv[5];
  g_offset_us = strtod(argv[6], nullptr);
  const char* e2e = getenv("WS_CLIENT_E2E");
  g_e2e = e2e != nullptr && strcmp(e2e, "1") == 0;
  timespec seed;
  clock_gettime(CLOCK_REALTIME, &seed);
  g_rng ^= (uint64_t)seed.tv_nsec << 20 ^ (uint64_t)getpid();
  for (int i = 0; i < 8; i++) rnd();
  if (count <= 0 || port <= 0) { fprintf(stderr, "bad COUNT or PORT\n"); return 2; }

  g_ep = epoll_create1(EPOLL_CLOEXEC);
  if (g_ep < 0) fatal("epoll_create1");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) fatal("HOST must be an IPv4 address");
  g_conns.resize((size_t)count);
  for (int i = 0; i < count; i++) {
    Conn& c = g_conns[(size_t)i];
    c.idx = i;
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0) fatal("socket");
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c.fd, (sockaddr*)&sa, sizeof sa) != 0) fatal("connect");  // blocking connect on loopback, then non-blocking I/O
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    uint8_t kb[16];
    for (int j = 0; j < 16; j += 4) { uint32_t r = rnd(); memcpy(kb + j, &r, 4); }
    c.key = base64(kb, 16);
    c.out = "GET " + path + " HTTP/1.1\r\nHost: " + std::string(host) + ":" + std::to_string(port) +
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + c.key + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = (uint32_t)i;
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) fatal("epoll_ctl");
    flush_out(c);
  }
  // stdin: control lines from the bench
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  epoll_event sev{};
  sev.events = EPOLLIN;
  sev.data.u32 = UINT32_MAX;
  if (epoll_ctl(g_ep, EPOLL_CTL_ADD, 0, &sev) != 0) fatal("epoll_ctl stdin");
  std::string ctl;
  epoll_event evs[128];
  double lastEvent = 0;
  for (;;) {
    int k = 0;
    if (spin_us > 0 && g_ready_sent) {
      // adaptive busy polling: spin while events came within the last SPIN_US, then sleep
      for (;;) {
        k = epoll_wait(g_ep, evs, 128, 0);
        if (k != 0) break;
        if (now_us() - lastEvent > spin_us) { k = epoll_wait(g_ep, evs, 128, -1); break; }
      }
      lastEvent = now_us();
    } else {
      k = epoll_wait(g_ep, evs, 128, -1);
    }
    if (k < 0) { if (errno == EINTR) continue; fatal("epoll_wait"); }
    for (int e = 0; e < k; e++) {
      uint32_t id = evs[e].data.u32;
      if (id == UINT32_MAX) {
        char buf[256];
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0) return 0;  // the bench went away
        if (r > 0) ctl.append(buf, (size_t)r);
        size_t nl;
        while ((nl = ctl.find('\n')) != std::string::npos) {
          std::string line = ctl.substr(0, nl);
          ctl.erase(0, nl + 1);
          if (line == "PROGRESS") { printf("PROGRESS %llu\n", (unsigned long long)g_received); fflush(stdout); }
          else if (line == "STOP") { result(); return 0; }
          else if (line.compare(0, 5, "FROM ") == 0) g_from = strtod(line.c_str() + 5, nullptr);
        }
        continue;
      }
      Conn& c = g_conns[id];
      if (c.fd < 0) continue;
      if (evs[e].events & EPOLLOUT) flush_out(c);
      if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
}
