/*
 * rtp._fast: the compiled fast path of a call's audio, behind the same objects as the Python path.
 *
 * The Python classes stay the reference and keep every piece of state: rtp.receiver.RtpReceiver,
 * rtp.stats.ReceptionStats, rtp.playout.PlayoutBuffer. This module reads that state once per
 * call, does the common case in C and writes the state back, so either path can take over at any
 * packet. The common case is a plain PCMU packet (RFC 3550 5.1: version 2, no padding, extension
 * or CSRC) from the negotiated source and SSRC, the next sequence numbers, on time for playout.
 * Anything else (a new SSRC, reordering, a duplicate, late or jumping audio, DTMF, comfort noise,
 * another source) stops the fast path: that packet and every later one of the batch are returned,
 * in order, for the Python path.
 *
 *   receive_socket(fd, receiver, wall_offset, now) -> (leftovers, errno)
 *       every datagram waiting on a non-blocking UDP socket, read with recvmmsg(2) in batches of
 *       32 with the kernel's receive time (SO_TIMESTAMPNS); leftovers are (data, (host, port), arrival)
 *   receive_packets(receiver, packets, now) -> leftovers     the same on a list (tests, fuzzing)
 *   take_ulaw(codes, valid, position, out) -> bool           a pull of audio that all arrived
 *   upsample(pcm, history, matrix, out)                       the polyphase 8 kHz upsampler
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 32
#define MAX_DATAGRAM 2048
#define SEQ_MOD 65536
#define MAX_DROPOUT 3000
#define RECENT 1024

static int16_t ULAW[256];

static void build_ulaw_table(void) {
    /* ITU-T G.711 mu-law expansion, as rtp.g711's table. */
    for (int code = 0; code < 256; code++) {
        int inverted = ~code & 0xFF;
        int exponent = (inverted >> 4) & 0x07, mantissa = inverted & 0x0F;
        int magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
        ULAW[code] = (int16_t)((inverted & 0x80) ? -magnitude : magnitude);
    }
}

/* -- the state of one receiver, loaded from its Python objects and stored back -------------------- */

typedef struct {
    PyObject *receiver, *counters, *stats, *buffer, *playout_stats, *margins, *remote;
    Py_buffer codes, valid, seen, recent;
    int buffers;  /* how many of the four buffers are held */
    long long ssrc, packets, bytes;
    double last_packet_at;
    long long received, max_sequence, cycles, last_transit, clock_rate, recent_count, recent_next;
    int have_transit;
    double jitter;
    int have_pulled;
    double pulled_at, window;
    long long play, rate, offset, last_ts, unwrapped, target, ring, max_delay, mask, end, accepted, steered;
    int changed;
    struct sockaddr_storage remote_address;
    socklen_t remote_length;
} Receiver;

static PyObject *S_pop, *S_popleft, *S_append;

/* Attribute names as interned strings, made once per literal (looked up by the literal's address):
 * PyObject_GetAttrString would make a new string object at every access. */
#define NAMES 128
static const char *name_texts[NAMES];
static PyObject *name_objects[NAMES];

static PyObject *attribute_name(const char *text) {
    for (int i = 0; i < NAMES; i++) {
        if (name_texts[i] == text) return name_objects[i];
        if (name_texts[i] == NULL) {
            PyObject *made = PyUnicode_InternFromString(text);
            if (made == NULL) return NULL;
            name_texts[i] = text;
            name_objects[i] = made;
            return made;
        }
    }
    PyErr_SetString(PyExc_RuntimeError, "rtp._fast: too many attribute names");
    return NULL;
}

static PyObject *get_attribute(PyObject *owner, const char *text) {
    PyObject *key = attribute_name(text);
    return key == NULL ? NULL : PyObject_GetAttr(owner, key);
}

static int set_attribute(PyObject *owner, const char *text, PyObject *value) {
    PyObject *key = attribute_name(text);
    return key == NULL ? -1 : PyObject_SetAttr(owner, key, value);
}

static int get_ll(PyObject *owner, const char *name, long long *value) {
    PyObject *item = get_attribute(owner, name);
    if (item == NULL) return -1;
    if (item == Py_None) { Py_DECREF(item); return 0; }
    *value = PyLong_AsLongLong(item);
    Py_DECREF(item);
    if (*value == -1 && PyErr_Occurred()) return -1;
    return 1;
}

static int get_double(PyObject *owner, const char *name, double *value) {
    PyObject *item = get_attribute(owner, name);
    if (item == NULL) return -1;
    if (item == Py_None) { Py_DECREF(item); return 0; }
    *value = PyFloat_AsDouble(item);
    Py_DECREF(item);
    if (*value == -1.0 && PyErr_Occurred()) return -1;
    return 1;
}

static int get_buffer(PyObject *owner, const char *name, Py_buffer *view, Receiver *r) {
    PyObject *item = get_attribute(owner, name);
    if (item == NULL) return -1;
    int failed = PyObject_GetBuffer(item, view, PyBUF_WRITABLE);
    Py_DECREF(item);
    if (failed) return -1;
    r->buffers++;
    return 0;
}

static void release(Receiver *r) {
    Py_buffer *views[4] = {&r->codes, &r->valid, &r->seen, &r->recent};
    for (int i = 0; i < r->buffers; i++) PyBuffer_Release(views[i]);
    r->buffers = 0;
    Py_CLEAR(r->counters); Py_CLEAR(r->stats); Py_CLEAR(r->buffer); Py_CLEAR(r->playout_stats);
    Py_CLEAR(r->margins); Py_CLEAR(r->remote);
}

/* Whether the receiver is in the state the fast path handles: 1 yes, 0 no, -1 error. */
static int eligible(Receiver *r) {
    long long value = 0;
    int found;
    if ((found = get_ll(r->receiver, "_fast_pt", &value)) <= 0 || value != 0) return found < 0 ? -1 : 0;
    if ((found = get_ll(r->receiver, "_coded", &value)) <= 0 || value != 1) return found < 0 ? -1 : 0;
    if ((found = get_ll(r->receiver, "ssrc", &r->ssrc)) <= 0) return found;
    if ((found = get_ll(r->buffer, "_scale", &value)) <= 0 || value != 1) return found < 0 ? -1 : 0;
    if ((found = get_ll(r->buffer, "_offset", &r->offset)) <= 0) return found;
    if ((found = get_ll(r->buffer, "_ssrc", &value)) <= 0 || value != r->ssrc) return found < 0 ? -1 : 0;
    if ((found = get_ll(r->stats, "_started", &value)) <= 0 || value != 1) return found < 0 ? -1 : 0;
    if ((found = get_ll(r->stats, "_recent_count", &r->recent_count)) <= 0) return found;
    return 1;
}

static int load_numbers(Receiver *r) {
    int ok = get_ll(r->counters, "packets", &r->packets) > 0 && get_ll(r->counters, "bytes", &r->bytes) > 0
        && get_ll(r->stats, "received", &r->received) > 0 && get_ll(r->stats, "max_sequence", &r->max_sequence) > 0
        && get_ll(r->stats, "cycles", &r->cycles) > 0 && get_ll(r->stats, "clock_rate", &r->clock_rate) > 0
        && get_ll(r->stats, "_recent_next", &r->recent_next) > 0 && get_double(r->stats, "jitter", &r->jitter) > 0
        && get_ll(r->buffer, "_play", &r->play) > 0 && get_ll(r->buffer, "rate", &r->rate) > 0
        && get_ll(r->buffer, "_last_ts", &r->last_ts) > 0 && get_ll(r->buffer, "_unwrapped", &r->unwrapped) > 0
        && get_ll(r->buffer, "target_delay", &r->target) > 0 && get_ll(r->buffer, "_ring", &r->ring) > 0
        && get_ll(r->buffer, "_max_delay", &r->max_delay) > 0 && get_ll(r->buffer, "_mask", &r->mask) > 0
        && get_ll(r->buffer, "_end", &r->end) > 0 && get_ll(r->buffer, "_steered", &r->steered) > 0
        && get_double(r->buffer, "_window", &r->window) > 0 && get_ll(r->playout_stats, "accepted", &r->accepted) > 0;
    if (!ok) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "rtp._fast: a receiver number is None");
        return -1;
    }
    int found = get_ll(r->stats, "_last_transit", &r->last_transit);
    if (found < 0) return -1;
    r->have_transit = found;
    if ((found = get_double(r->buffer, "_pulled_at", &r->pulled_at)) < 0) return -1;
    r->have_pulled = found;
    return 0;
}

static int load_objects(Receiver *r) {
    if ((r->counters = get_attribute(r->receiver, "counters")) == NULL) return -1;
    if ((r->stats = get_attribute(r->receiver, "stats")) == NULL) return -1;
    if ((r->buffer = get_attribute(r->receiver, "buffer")) == NULL) return -1;
    if ((r->playout_stats = get_attribute(r->buffer, "stats")) == NULL) return -1;
    if ((r->margins = get_attribute(r->buffer, "_margins")) == NULL) return -1;
    if ((r->remote = get_attribute(r->receiver, "remote")) == NULL) return -1;
    return 0;
}

/* Load what the fast path needs: 1 ready, 0 not eligible (the Python path takes everything), -1 error. */
static int load(Receiver *r) {
    if (load_objects(r) < 0) return -1;
    int ready = eligible(r);
    if (ready <= 0) return ready;
    PyObject *store = get_attribute(r->buffer, "_store");
    if (store == NULL) return -1;
    int failed = get_buffer(store, "codes", &r->codes, r);
    Py_DECREF(store);
    if (failed || get_buffer(r->buffer, "_valid", &r->valid, r) || get_buffer(r->stats, "_seen", &r->seen, r)
        || get_buffer(r->stats, "_recent", &r->recent, r))
        return -1;
    if (load_numbers(r) < 0) return -1;
    if (r->codes.len != r->ring || r->valid.len != r->ring || r->seen.len != SEQ_MOD / 8
        || r->recent.len != 2 * RECENT) {
        PyErr_SetString(PyExc_ValueError, "rtp._fast: the receiver's buffers have unexpected sizes");
        return -1;
    }
    return 1;
}

static int set_ll(PyObject *owner, const char *name, long long value) {
    PyObject *item = PyLong_FromLongLong(value);
    if (item == NULL) return -1;
    int failed = set_attribute(owner, name, item);
    Py_DECREF(item);
    return failed;
}

static int set_double(PyObject *owner, const char *name, double value) {
    PyObject *item = PyFloat_FromDouble(value);
    if (item == NULL) return -1;
    int failed = set_attribute(owner, name, item);
    Py_DECREF(item);
    return failed;
}

static int store(Receiver *r) {
    if (!r->changed) return 0;
    if (set_ll(r->counters, "packets", r->packets) || set_ll(r->counters, "bytes", r->bytes)
        || set_double(r->receiver, "last_packet_at", r->last_packet_at)
        || set_ll(r->stats, "received", r->received) || set_ll(r->stats, "max_sequence", r->max_sequence)
        || set_ll(r->stats, "cycles", r->cycles) || set_double(r->stats, "jitter", r->jitter)
        || set_ll(r->stats, "_last_transit", r->last_transit) || set_ll(r->stats, "_recent_count", r->recent_count)
        || set_ll(r->stats, "_recent_next", r->recent_next) || set_ll(r->buffer, "_unwrapped", r->unwrapped)
        || set_ll(r->buffer, "_last_ts", r->last_ts) || set_ll(r->buffer, "_end", r->end)
        || set_attribute(r->buffer, "_late_since", Py_None)
        || set_ll(r->playout_stats, "accepted", r->accepted))
        return -1;
    return 0;
}

/* -- one packet --------------------------------------------------------------------------------- */

/* PlayoutBuffer._note_margin: a monotonic queue of (arrival, margin net of steering). */
static int note_margin(Receiver *r, long long net, double now) {
    while (PyObject_Length(r->margins) > 0) {
        PyObject *last = PySequence_GetItem(r->margins, -1);
        if (last == NULL) return -1;
        long long value = PyLong_AsLongLong(PyTuple_GET_ITEM(last, 1));
        Py_DECREF(last);
        if (value == -1 && PyErr_Occurred()) return -1;
        if (value < net) break;
        PyObject *gone = PyObject_CallMethodNoArgs(r->margins, S_pop);
        if (gone == NULL) return -1;
        Py_DECREF(gone);
    }
    PyObject *entry = Py_BuildValue("(dL)", now, net);
    if (entry == NULL) return -1;
    PyObject *done = PyObject_CallMethodOneArg(r->margins, S_append, entry);
    Py_DECREF(entry);
    if (done == NULL) return -1;
    Py_DECREF(done);
    for (;;) {
        PyObject *first = PySequence_GetItem(r->margins, 0);
        if (first == NULL) return -1;
        double at = PyFloat_AsDouble(PyTuple_GET_ITEM(first, 0));
        Py_DECREF(first);
        if (!(at < now - r->window)) return 0;
        PyObject *gone = PyObject_CallMethodNoArgs(r->margins, S_popleft);
        if (gone == NULL) return -1;
        Py_DECREF(gone);
    }
}

static void remember_sequence(Receiver *r, unsigned sequence) {
    /* ReceptionStats._is_duplicate, for a number not seen. */
    unsigned char *seen = r->seen.buf;
    uint16_t *recent = r->recent.buf;
    if (r->recent_count == RECENT) {
        unsigned oldest = recent[r->recent_next];
        seen[oldest >> 3] &= (unsigned char)~(1u << (oldest & 7));
    } else {
        r->recent_count++;
    }
    recent[r->recent_next] = (uint16_t)sequence;
    r->recent_next = (r->recent_next + 1) % RECENT;
    seen[sequence >> 3] |= (unsigned char)(1u << (sequence & 7));
}

static void count_packet(Receiver *r, unsigned sequence, uint32_t timestamp, Py_ssize_t size, double now) {
    /* RtpReceiver._count and ReceptionStats.update (RFC 3550 A.1 and A.8), for the next packets in order. */
    r->packets++;
    r->bytes += size;
    r->last_packet_at = now;
    r->received++;
    remember_sequence(r, sequence);
    if ((long long)sequence < r->max_sequence) r->cycles += SEQ_MOD;
    r->max_sequence = sequence;
    long long transit = (long long)(now * (double)r->clock_rate) - (long long)timestamp;
    if (r->have_transit) {
        long long delta = llabs(transit - r->last_transit);
        if (delta < r->clock_rate * 10) r->jitter += ((double)delta - r->jitter) / 16.0;
    }
    r->last_transit = transit;
    r->have_transit = 1;
}

static void write_ring(Receiver *r, long long offset, const unsigned char *media, long long count) {
    unsigned char *codes = r->codes.buf, *valid = r->valid.buf;
    long long first = count < r->ring - offset ? count : r->ring - offset;
    memcpy(codes + offset, media, (size_t)first);
    memset(valid + offset, 1, (size_t)first);
    if (first < count) {
        memcpy(codes, media + first, (size_t)(count - first));
        memset(valid, 1, (size_t)(count - first));
    }
}

/* 1: the packet was taken; 0: not a packet for the fast path (nothing changed); -1: error. */
static int fast_packet(Receiver *r, const unsigned char *data, Py_ssize_t size, double now) {
    if (size <= 12 || data[0] != 0x80 || (data[1] & 0x7F) != 0) return 0;
    unsigned sequence = (unsigned)data[2] << 8 | data[3];
    uint32_t timestamp = (uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 | (uint32_t)data[6] << 8 | data[7];
    uint32_t ssrc = (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 | (uint32_t)data[10] << 8 | data[11];
    if ((long long)ssrc != r->ssrc) return 0;
    if (((unsigned char *)r->seen.buf)[sequence >> 3] & (1u << (sequence & 7))) return 0;
    unsigned step = (unsigned)((sequence - r->max_sequence) & (SEQ_MOD - 1));
    if (step == 0 || step >= MAX_DROPOUT) return 0;
    long long expected = r->play;  /* PlayoutBuffer._expected_position */
    if (r->have_pulled) {
        long long ahead = (long long)((now - r->pulled_at) * (double)r->rate);
        if (ahead > 0) expected += ahead;
    }
    long long unwrapped = r->unwrapped + (int32_t)(timestamp - (uint32_t)r->last_ts);
    long long position = unwrapped + r->offset, count = size - 12;
    if (llabs(position - (expected + r->target)) > r->rate || position < r->play) return 0;
    if (position + count - r->play > r->ring - r->max_delay) return 0;
    long long offset = position & r->mask;
    if (((unsigned char *)r->valid.buf)[offset]) return 0;
    count_packet(r, sequence, timestamp, size, now);
    r->unwrapped = unwrapped;
    r->last_ts = timestamp;
    write_ring(r, offset, data + 12, count);
    if (position + count > r->end) r->end = position + count;
    r->accepted++;
    r->changed = 1;
    return note_margin(r, position - expected - r->steered, now) < 0 ? -1 : 1;
}

/* -- sources ------------------------------------------------------------------------------------ */

/* The remote (host, port) as a socket address, if its text is the form the kernel's address takes
 * back (else the Python path, which compares text, decides). */
static int parse_remote(Receiver *r) {
    const char *host;
    int port;
    r->remote_length = 0;
    if (!PyArg_ParseTuple(r->remote, "si", &host, &port)) {
        PyErr_Clear();
        return 0;
    }
    char again[INET6_ADDRSTRLEN];
    struct sockaddr_in *v4 = (struct sockaddr_in *)&r->remote_address;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&r->remote_address;
    memset(&r->remote_address, 0, sizeof r->remote_address);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        r->remote_length = sizeof *v4;
        inet_ntop(AF_INET, &v4->sin_addr, again, sizeof again);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        r->remote_length = sizeof *v6;
        inet_ntop(AF_INET6, &v6->sin6_addr, again, sizeof again);
    } else {
        return 0;
    }
    if (strcmp(again, host) != 0) r->remote_length = 0;
    return 0;
}

static int same_source(Receiver *r, const struct sockaddr_storage *source) {
    if (r->remote_length == 0 || source->ss_family != r->remote_address.ss_family) return 0;
    if (source->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)source, *b = (const void *)&r->remote_address;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *a = (const void *)source, *b = (const void *)&r->remote_address;
    return a->sin6_port == b->sin6_port && a->sin6_scope_id == 0
        && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
}

/* (host, port) as Python's socket module gives it for a datagram's source. */
static PyObject *source_tuple(const struct sockaddr_storage *source) {
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
    if (source->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const void *)source;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(v4->sin_port));
    }
    const struct sockaddr_in6 *v6 = (const void *)source;
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    char name[IF_NAMESIZE];
    if (v6->sin6_scope_id != 0 && if_indextoname(v6->sin6_scope_id, name) != NULL) {
        strcat(host, "%");
        strcat(host, name);
    }
    return Py_BuildValue("(si)", host, ntohs(v6->sin6_port));
}

/* -- receive_socket / receive_packets ----------------------------------------------------------- */

static double arrival_of(struct msghdr *header, double wall_offset, double now) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(header); c != NULL; c = CMSG_NXTHDR(header, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
            struct timespec stamp;
            memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
            double arrival = ((double)stamp.tv_sec + (double)stamp.tv_nsec * 1e-9) - wall_offset;
            return arrival < now ? arrival : now;
        }
    }
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    double arrival = ((double)wall.tv_sec + (double)wall.tv_nsec * 1e-9) - wall_offset;
    return arrival < now ? arrival : now;
}

static int leave(PyObject *leftovers, const unsigned char *data, Py_ssize_t size, PyObject *source, double arrival) {
    if (source == NULL) return -1;
    PyObject *item = Py_BuildValue("(y#Od)", data, size, source, arrival);
    Py_DECREF(source);
    if (item == NULL) return -1;
    int failed = PyList_Append(leftovers, item);
    Py_DECREF(item);
    return failed;
}

typedef struct {
    struct mmsghdr messages[BATCH];
    struct iovec vectors[BATCH];
    struct sockaddr_storage sources[BATCH];
    char control[BATCH][CMSG_SPACE(sizeof(struct timespec)) + 64];
    unsigned char data[BATCH][MAX_DATAGRAM];
} Batch;

static Batch batch;  /* one per process: the GIL is held throughout */

static void arm_batch(void) {
    for (int i = 0; i < BATCH; i++) {
        batch.vectors[i].iov_base = batch.data[i];
        batch.vectors[i].iov_len = MAX_DATAGRAM;
        struct msghdr *h = &batch.messages[i].msg_hdr;
        h->msg_name = &batch.sources[i];
        h->msg_namelen = sizeof batch.sources[i];
        h->msg_iov = &batch.vectors[i];
        h->msg_iovlen = 1;
        h->msg_control = batch.control[i];
        h->msg_controllen = sizeof batch.control[i];
        h->msg_flags = 0;
    }
}

/* The receiver's state is loaded at the first datagram (a tick that finds none costs one syscall). */
#define NOT_LOADED 2

/* One batch read: the datagrams, each fast or left over. Returns how many were read, -1 on error. */
static int read_batch(int fd, Receiver *r, int *fast, double wall_offset, double now, PyObject *leftovers, int *error) {
    arm_batch();
    int got = recvmmsg(fd, batch.messages, BATCH, MSG_DONTWAIT, NULL);
    if (got < 0) {
        *error = (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : errno;
        return 0;
    }
    if (got > 0 && *fast == NOT_LOADED) {
        *fast = load(r);
        if (*fast < 0 || (*fast == 1 && parse_remote(r) < 0)) return -1;
    }
    for (int i = 0; i < got; i++) {
        struct msghdr *h = &batch.messages[i].msg_hdr;
        Py_ssize_t size = batch.messages[i].msg_len;
        double arrival = arrival_of(h, wall_offset, now);
        if (*fast == 1 && same_source(r, &batch.sources[i])) {
            int taken = fast_packet(r, batch.data[i], size, arrival);
            if (taken < 0) return -1;
            if (taken) continue;
        }
        *fast = 0;  /* from here on in arrival order through the Python path */
        if (leave(leftovers, batch.data[i], size, source_tuple(&batch.sources[i]), arrival) < 0) return -1;
    }
    return got;
}

static PyObject *finish(Receiver *r, PyObject *result) {
    if (result != NULL && store(r) < 0) Py_CLEAR(result);
    release(r);
    return result;
}

static PyObject *receive_socket(PyObject *module, PyObject *args) {
    int fd;
    double wall_offset, now;
    Receiver r = {0};
    if (!PyArg_ParseTuple(args, "iOdd", &fd, &r.receiver, &wall_offset, &now)) return NULL;
    PyObject *leftovers = PyList_New(0);
    if (leftovers == NULL) return NULL;
    int fast = NOT_LOADED, error = 0, got;
    do {
        got = read_batch(fd, &r, &fast, wall_offset, now, leftovers, &error);
    } while (got == BATCH);
    if (got < 0) {
        Py_DECREF(leftovers);
        return finish(&r, NULL);
    }
    PyObject *result = Py_BuildValue("(Ni)", leftovers, error);
    return finish(&r, result);
}

static PyObject *receive_packets(PyObject *module, PyObject *args) {
    PyObject *packets;
    double now;
    Receiver r = {0};
    if (!PyArg_ParseTuple(args, "OO!d", &r.receiver, &PyList_Type, &packets, &now)) return NULL;
    PyObject *leftovers = PyList_New(0);
    int fast = leftovers == NULL ? -1 : load(&r);
    for (Py_ssize_t i = 0; fast >= 0 && i < PyList_GET_SIZE(packets); i++) {
        PyObject *item = PyList_GET_ITEM(packets, i), *data, *source;
        double arrival;
        if (!PyArg_ParseTuple(item, "SOd", &data, &source, &arrival)) { fast = -1; break; }
        if (fast == 1) {
            int same = PyObject_RichCompareBool(source, r.remote, Py_EQ);
            int taken = same == 1 ? fast_packet(&r, (unsigned char *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), arrival) : same;
            if (taken < 0) { fast = -1; break; }
            if (taken) continue;
            fast = 0;
        }
        if (PyList_Append(leftovers, item) < 0) fast = -1;
    }
    if (fast < 0) {
        Py_XDECREF(leftovers);
        return finish(&r, NULL);
    }
    return finish(&r, leftovers);
}

/* -- playout and upsampling --------------------------------------------------------------------- */

/* Decode and consume ``out``'s length of the ring from ``position`` if every sample arrived: 1 taken,
 * 0 a sample is missing (nothing changed), -1 error. */
static int take(Py_buffer *codes, Py_buffer *valid, long long position, Py_buffer *out) {
    Py_ssize_t ring = codes->len, count = out->len / 2;
    if (valid->len != ring || (ring & (ring - 1)) != 0 || count > ring) {
        PyErr_SetString(PyExc_ValueError, "take_ulaw: codes and valid must be one power-of-two ring");
        return -1;
    }
    unsigned char *code = codes->buf, *flag = valid->buf;
    int16_t *samples = out->buf;
    Py_ssize_t mask = ring - 1, start = (Py_ssize_t)(position & mask);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!flag[(start + i) & mask]) return 0;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t at = (start + i) & mask;
        samples[i] = ULAW[code[at]];
        flag[at] = 0;
    }
    return 1;
}

static PyObject *take_ulaw(PyObject *module, PyObject *args) {
    Py_buffer codes, valid, out;
    long long position;
    if (!PyArg_ParseTuple(args, "w*w*Lw*", &codes, &valid, &position, &out)) return NULL;
    int taken = take(&codes, &valid, position, &out);
    PyBuffer_Release(&codes); PyBuffer_Release(&valid); PyBuffer_Release(&out);
    if (taken < 0) return NULL;
    return Py_NewRef(taken ? Py_True : Py_False);
}

/* PlayoutBuffer.pull when nothing but a take is due (no trim, no steering, no comfort noise, every
 * sample arrived): decoded into ``out``, consumed, the pull's time noted. False: nothing changed. */
static int steady(PyObject *buffer, long long count, long long *play) {
    long long end, max_delay, headroom, frame, min_delay, steered;
    if (get_ll(buffer, "_end", &end) <= 0 || get_ll(buffer, "_play", play) <= 0
        || get_ll(buffer, "_max_delay", &max_delay) <= 0 || get_ll(buffer, "_headroom", &headroom) <= 0
        || get_ll(buffer, "_frame", &frame) <= 0 || get_ll(buffer, "_min_delay", &min_delay) <= 0
        || get_ll(buffer, "_steered", &steered) <= 0)
        return PyErr_Occurred() ? -1 : 0;
    long long depth = end > *play ? end - *play : 0;
    if (depth > max_delay || count < frame) return 0;
    PyObject *marks = get_attribute(buffer, "_noise_marks"), *noise = get_attribute(buffer, "_noise");
    int quiet = marks != NULL && noise != NULL && PyObject_Length(marks) == 0 && noise == Py_None;
    Py_XDECREF(marks);
    Py_XDECREF(noise);
    if (!quiet) return PyErr_Occurred() ? -1 : 0;
    PyObject *margins = get_attribute(buffer, "_margins");
    if (margins == NULL) return -1;
    int result = 1;
    if (PyObject_Length(margins) > 0) {  /* PlayoutBuffer._steering */
        PyObject *first = PySequence_GetItem(margins, 0);
        long long worst = first == NULL ? 0 : PyLong_AsLongLong(PyTuple_GET_ITEM(first, 1)) + steered;
        Py_XDECREF(first);
        if (PyErr_Occurred()) result = -1;
        else if (worst < headroom / 2 || (worst > headroom + 2 * frame && depth > min_delay)) result = 0;
    }
    Py_DECREF(margins);
    return result;
}

static PyObject *pull_ulaw(PyObject *module, PyObject *args) {
    PyObject *buffer;
    Py_buffer out, codes = {0}, valid = {0};
    double now;
    if (!PyArg_ParseTuple(args, "Ow*d", &buffer, &out, &now)) return NULL;
    long long play = 0, count = out.len / 2;
    int ready = steady(buffer, count, &play);
    if (ready == 1) {
        PyObject *store = get_attribute(buffer, "_store");
        Receiver holder = {0};
        ready = store == NULL || get_buffer(store, "codes", &codes, &holder) || get_buffer(buffer, "_valid", &valid, &holder)
            ? -1 : take(&codes, &valid, play, &out);
        Py_XDECREF(store);
        if (ready == 1 && (set_ll(buffer, "_play", play + count) || set_double(buffer, "_pulled_at", now))) ready = -1;
        if (holder.buffers > 0) PyBuffer_Release(&codes);
        if (holder.buffers > 1) PyBuffer_Release(&valid);
    }
    PyBuffer_Release(&out);
    if (ready < 0) return NULL;
    return Py_NewRef(ready == 1 ? Py_True : Py_False);
}

static void convolve(const float *block, Py_ssize_t n, const float *matrix, int taps, int factor, float *out, float *acc) {
    for (int p = 0; p < factor; p++) {
        for (Py_ssize_t i = 0; i < n; i++) acc[i] = 0.0f;
        for (int j = 0; j < taps; j++) {
            const float c = matrix[j * factor + p];
            const float *x = block + j;
            for (Py_ssize_t i = 0; i < n; i++) acc[i] += x[i] * c;
        }
        for (Py_ssize_t i = 0; i < n; i++) out[i * factor + p] = acc[i];
    }
}

static PyObject *upsample(PyObject *module, PyObject *args) {
    Py_buffer pcm, history, matrix, out;
    if (!PyArg_ParseTuple(args, "y*w*y*w*", &pcm, &history, &matrix, &out)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = pcm.len / 2, kept = history.len / 4;
    int taps = (int)kept + 1, factor = taps > 0 ? (int)(matrix.len / 4 / taps) : 0;
    float *block = NULL;
    if (factor < 1 || matrix.len != (Py_ssize_t)taps * factor * 4 || out.len != n * factor * 4) {
        PyErr_SetString(PyExc_ValueError, "upsample: history, matrix and out do not fit the input");
        goto done;
    }
    block = PyMem_Malloc((size_t)(kept + 2 * n) * sizeof(float));
    if (block == NULL) { PyErr_NoMemory(); goto done; }
    memcpy(block, history.buf, (size_t)kept * sizeof(float));
    const int16_t *samples = pcm.buf;
    for (Py_ssize_t i = 0; i < n; i++) block[kept + i] = samples[i] * (1.0f / 32768.0f);
    convolve(block, n, matrix.buf, taps, factor, out.buf, block + kept + n);
    memcpy(history.buf, block + n, (size_t)kept * sizeof(float));
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(block);
    PyBuffer_Release(&pcm); PyBuffer_Release(&history); PyBuffer_Release(&matrix); PyBuffer_Release(&out);
    return result;
}

static PyMethodDef METHODS[] = {
    {"receive_socket", receive_socket, METH_VARARGS, "Every datagram waiting: the fast ones taken, the rest returned."},
    {"receive_packets", receive_packets, METH_VARARGS, "The same on a list of (data, source, arrival)."},
    {"take_ulaw", take_ulaw, METH_VARARGS, "Decode and consume a pull whose samples all arrived; False if one did not."},
    {"pull_ulaw", pull_ulaw, METH_VARARGS, "PlayoutBuffer.pull when only a take is due; False (nothing changed) otherwise."},
    {"upsample", upsample, METH_VARARGS, "The polyphase upsampler of bridge.media.upsample, one block."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "rtp._fast", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fast(void) {
    build_ulaw_table();
    S_pop = PyUnicode_InternFromString("pop");
    S_popleft = PyUnicode_InternFromString("popleft");
    S_append = PyUnicode_InternFromString("append");
    if (S_pop == NULL || S_popleft == NULL || S_append == NULL) return NULL;
    return PyModule_Create(&MODULE);
}
