#include "storage/convert.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <thread>

#include <sys/mman.h>

#include <fmt/format.h>

#include "storage/chain.hpp"
#include "storage/options.hpp"
#include "storage/qcow2.hpp"

namespace vireo::storage {

namespace {

// A fixed set of worker threads that run one batch of independent jobs at
// a time, in the background: start() returns at once, wait() blocks until
// the batch is done.
class WorkerPool {
public:
    explicit WorkerPool(size_t n) {
        for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
    }
    ~WorkerPool() {
        wait();
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    void start(size_t n, std::function<void(size_t)> fn) {
        wait();
        {
            std::lock_guard lk(mu_);
            fn_ = std::move(fn);
            n_ = n;
            next_ = 0;
            done_ = 0;
            ++gen_;
        }
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock lk(mu_);
        done_cv_.wait(lk, [&] { return done_ == n_; });
    }

private:
    // Jobs are handed out under the lock and only for the generation the
    // worker woke up for, so a slow worker never runs a job twice.
    void work(uint64_t gen) {
        for (;;) {
            size_t i;
            {
                std::lock_guard lk(mu_);
                if (gen != gen_ || next_ >= n_) return;
                i = next_++;
            }
            fn_(i);
            std::lock_guard lk(mu_);
            if (++done_ == n_) done_cv_.notify_all();
        }
    }
    void loop() {
        uint64_t seen = 0;
        for (;;) {
            {
                std::unique_lock lk(mu_);
                cv_.wait(lk, [&] { return stop_ || gen_ != seen; });
                if (stop_) return;
                seen = gen_;
            }
            work(seen);
        }
    }
    std::vector<std::thread> threads_;
    std::mutex mu_;
    std::condition_variable cv_, done_cv_;
    std::function<void(size_t)> fn_;
    size_t n_ = 0, done_ = 0;
    size_t next_ = 0;
    uint64_t gen_ = 0;
    bool stop_ = false;
};

// A large batch buffer in 2 MiB-aligned memory that the kernel may back
// with huge pages: a few faults instead of one per 4 KiB page (page faults
// are expensive on virtualised hosts).
struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
};
using BigBuffer = std::unique_ptr<char, FreeDeleter>;
BigBuffer big_buffer(uint64_t size) {
    constexpr uint64_t kHuge = 2ULL << 20;
    size = (size + kHuge - 1) / kHuge * kHuge;
    auto* p = static_cast<char*>(std::aligned_alloc(kHuge, size));
    if (!p) throw std::bad_alloc();
    (void)madvise(p, size, MADV_HUGEPAGE);  // a hint: fine if refused
    return BigBuffer(p);
}

// One piece of the target: a run that reads as zero in the source, or up
// to one target unit of data held in the batch buffer.
struct Piece {
    uint64_t dst_off = 0;
    uint64_t len = 0;
    bool in_buffer = false;
    uint64_t buf_off = 0;
    // Filled in by the workers:
    bool zero = false;
    size_t clen = 0;  // compressed size (0: store uncompressed)
    std::optional<Error> error;
};

struct Batch {
    BigBuffer raw;
    BigBuffer packed;  // compressed output, same offsets as raw
    uint64_t used = 0;
    std::vector<Piece> pieces;
    uint64_t end = 0;  // target offset covered so far
};

// How the copy stage runs (from ConvertOptions).
struct CopySettings {
    bool compress = false;
    bool target_fresh = true;           // target reads zero everywhere already
    // -B: only the sources' top layers are copied; what they leave to
    // their backing files is left to the target's backing file (qemu-img
    // convert -B: "allocated in the source above its backing").
    bool top_layer_only = false;
    std::optional<uint64_t> zero_from;  // a new target reads zero from here on
    bool salvage = false;
    uint64_t sparse = 4096;
    unsigned threads = 8;
    uint64_t rate_limit = 0;
    ProgressFn progress;
    WarnFn warn;
};

class Copier {
public:
    Copier(const std::vector<Image*>& views, Image* dst, const CopySettings& s)
        : views_(views), dst_(dst), s_(s) {
        cluster_ = dst->cluster_size();
        unit_ = s.compress ? cluster_ : std::max<uint64_t>(cluster_, std::max<uint64_t>(s.sparse, 512));
        // Compression works on 8 MiB batches (enough clusters for every
        // thread); plain copies on 2 MiB, which keeps the buffers in cache.
        capacity_ = std::max<uint64_t>(s.compress ? 8ULL << 20 : 2ULL << 20, 4 * unit_) / unit_ * unit_;
        for (auto& b : batches_) {
            b.raw = big_buffer(capacity_);
            if (s.compress) b.packed = big_buffer(capacity_);
        }
        for (Image* v : views) total_ += v->size();
        // As many compression threads as qemu-img has requests in flight
        // (-m, default 8), even on fewer cores: on a shared host the
        // scheduler shares CPU time per thread.
        // Without compression the checks are cheap: they run inline, as
        // handing them to a thread only adds wake-up latency.
        if (s.compress) pool_ = std::make_unique<WorkerPool>(std::max(1U, s.threads));
        t0_ = std::chrono::steady_clock::now();
    }

    // Copy every view; false when it failed (error()) or was cancelled.
    bool run();
    [[nodiscard]] const Error& error() const { return error_; }

private:
    Batch& cur() { return batches_[cur_]; }
    // How a source run is copied: as data, as zero, or (-B) not at all.
    struct Status_ {
        uint64_t length = 0;
        bool data = false;
        bool backing = false;
    };
    Result<Status_> status(Image* src, uint64_t off, uint64_t len);
    Image* run_src_ = nullptr;  // the run status() last looked up
    uint64_t run_start_ = 0, run_end_ = 0;
    Status_ run_;
    bool add_zero_run(uint64_t dst_off, uint64_t len);
    bool read_into_batch(Image* src, uint64_t src_off, uint64_t len, uint64_t dst_off);
    Status salvage_read(Image* src, uint64_t off, char* buf, uint64_t len);
    bool cycle();
    void start_workers(Batch& b);
    bool write_batch(Batch& b);
    bool write_plain(uint64_t off, const char* data, uint64_t len);
    void throttle();
    bool fail_write(uint64_t off, const Error& e) {
        return failed(Error{e.code, fmt::format("error while writing at byte {}: {}", off, e.message)});
    }
    bool failed(Error e) {
        error_ = std::move(e);
        return false;
    }
    // qemu-img's progress accounting (see ProgressPlan).
    bool plan_progress();
    bool progress_to(uint64_t written_end);

    const std::vector<Image*>& views_;
    Image* dst_;
    const CopySettings& s_;
    Error error_;
    uint64_t cluster_ = 65536, unit_ = 65536, capacity_ = 0, total_ = 0;
    Batch batches_[2];
    int cur_ = 0;
    bool prev_pending_ = false;  // batches_[cur_ ^ 1] is being compressed
    std::unique_ptr<WorkerPool> pool_;
    uint64_t written_ = 0;
    std::chrono::steady_clock::time_point t0_;
    // Progress: the counted runs in target order, and how far reporting got.
    struct CountedRun {
        uint64_t start = 0, len = 0, chunk = 0;
    };
    std::vector<CountedRun> runs_;
    size_t run_idx_ = 0;
    uint64_t run_pos_ = 0;  // bytes of runs_[run_idx_] reported
    uint64_t counted_total_ = 0, counted_done_ = 0;
};

Result<Copier::Status_> Copier::status(Image* src, uint64_t off, uint64_t len) {
    Status_ s;
    if (!s_.top_layer_only) {
        auto e = chain_status(src, off, len);
        if (!e) return std::unexpected(e.error());
        s.length = e->length;
        s.data = e->data;
        return s;
    }
    // The top layer only: unallocated there is the backing file's, or reads
    // zero without one, or from a start past a shorter one (the run is not
    // split at the backing file's end: QEMU judges it by where it starts,
    // so a run is looked up whole, once, and remembered).
    if (src == run_src_ && off >= run_start_ && off < run_end_) {
        s = run_;
        s.length = std::min(len, run_end_ - off);
        return s;
    }
    constexpr uint64_t kMaxRequest = (uint64_t{0x7fffffff} >> 9) << 9;
    auto e = src->block_status(off, std::min(src->size() - off, kMaxRequest));
    if (!e) return std::unexpected(e.error());
    s.length = e->length;
    Image* b = src->backing();
    switch (e->kind) {
        case ExtentKind::Unallocated: s.backing = b && off < b->size(); break;
        case ExtentKind::Zero: break;
        case ExtentKind::Data: s.data = !(e->host_zero && src->format() == ImageFormat::Raw); break;
        case ExtentKind::Compressed: s.data = true; break;
    }
    run_src_ = src;
    run_start_ = off;
    run_end_ = off + s.length;
    run_ = s;
    s.length = std::min(len, s.length);
    return s;
}

bool Copier::add_zero_run(uint64_t dst_off, uint64_t len) {
    auto& p = cur().pieces;
    if (!p.empty() && !p.back().in_buffer && p.back().dst_off + p.back().len == dst_off) {
        p.back().len += len;
    } else {
        Piece z;
        z.dst_off = dst_off;
        z.len = len;
        p.push_back(z);
    }
    cur().end = dst_off + len;
    return true;
}

Status Copier::salvage_read(Image* src, uint64_t off, char* buf, uint64_t len) {
    // As qemu-img --salvage: retry sector by sector; what cannot be read
    // is reported and copied as zeroes.
    for (uint64_t p = 0; p < len; p += 512) {
        uint64_t n = std::min<uint64_t>(512, len - p);
        auto st = src->read(off + p, buf + p, n);
        if (!st) {
            if (s_.warn) s_.warn(fmt::format("warning: error while reading offset {}: {}", off + p, st.error().full_message()));
            std::memset(buf + p, 0, n);
        }
    }
    return {};
}

bool Copier::read_into_batch(Image* src, uint64_t src_off, uint64_t len, uint64_t dst_off) {
    Batch& b = cur();
    char* buf = b.raw.get() + b.used;
    auto st = src->read(src_off, buf, len);
    if (!st && s_.salvage) st = salvage_read(src, src_off, buf, len);
    if (!st) return failed(Error{st.error().code, fmt::format("error while reading at byte {}: {}", src_off, st.error().message)});
    for (uint64_t p = 0; p < len;) {
        uint64_t d = dst_off + p;
        uint64_t step = std::min<uint64_t>(len - p, unit_ - d % unit_);
        Piece piece;
        piece.dst_off = d;
        piece.len = step;
        piece.in_buffer = true;
        piece.buf_off = b.used + p;
        b.pieces.push_back(piece);
        p += step;
    }
    b.used += len;
    b.end = dst_off + len;
    return true;
}

void Copier::start_workers(Batch& b) {
    const bool compress = s_.compress;
    auto job = [this, &b, compress](size_t i) {
        Piece& p = b.pieces[i];
        if (!p.in_buffer) return;
        const char* d = b.raw.get() + p.buf_off;
        p.zero = buffer_is_zero(d, p.len);
        if (!compress || p.zero) return;
        bool whole = p.dst_off % cluster_ == 0 && (p.len == cluster_ || p.dst_off + p.len == dst_->size());
        if (!whole) return;
        auto r = dst_->compress_cluster_into(d, p.len, b.packed.get() + p.buf_off, cluster_);
        if (r) p.clen = *r;
        else p.error = r.error();
    };
    if (!pool_) {
        for (size_t i = 0; i < b.pieces.size(); ++i) job(i);
        return;
    }
    pool_->start(b.pieces.size(), job);
}

bool Copier::write_plain(uint64_t off, const char* data, uint64_t len) {
    // Runs go out in writes of at most 256 KiB: large enough for contiguous
    // allocation, small enough not to stall in the kernel's dirty-page
    // throttling on a busy host.
    constexpr uint64_t kMaxWrite = 256ULL << 10;
    for (uint64_t done = 0; done < len;) {
        uint64_t n = std::min(kMaxWrite, len - done);
        auto w = dst_->write(off + done, data + done, n);
        if (!w) return fail_write(off + done, w.error());
        done += n;
    }
    return true;
}

void Copier::throttle() {
    if (!s_.rate_limit) return;
    double due = static_cast<double>(written_) / static_cast<double>(s_.rate_limit);
    double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    if (due > now) std::this_thread::sleep_for(std::chrono::duration<double>(due - now));
}

bool Copier::write_batch(Batch& b) {
    std::vector<PackedCluster> packed;
    uint64_t run_off = 0, run_len = 0;
    const char* run_data = nullptr;
    auto flush_packed = [&]() -> bool {
        if (packed.empty()) return true;
        auto st = dst_->write_compressed_batch(packed);
        uint64_t at = packed.front().off;
        packed.clear();
        return st ? true : fail_write(at, st.error());
    };
    auto flush_run = [&]() -> bool {
        bool ok = write_plain(run_off, run_data, run_len);
        run_len = 0;
        return ok;
    };
    auto flush_all = [&] { return flush_packed() && flush_run(); };
    for (const Piece& p : b.pieces) {
        if (p.error) return fail_write(p.dst_off, *p.error);
        bool skip = false;
        if (!p.in_buffer || (p.zero && s_.sparse > 0)) {
            if (!flush_all()) return false;
            // A new target reads zero past its backing file's end already
            // (qemu-img writes no zeroes there either).
            const uint64_t zero_len = s_.zero_from ? std::min(p.len, *s_.zero_from > p.dst_off ? *s_.zero_from - p.dst_off : 0) : p.len;
            if (!s_.target_fresh && zero_len) {
                auto z = dst_->write_zeroes(p.dst_off, zero_len, true);
                if (!z) return fail_write(p.dst_off, z.error());
            }
            skip = true;
        }
        const char* d = p.in_buffer ? b.raw.get() + p.buf_off : nullptr;
        if (skip) {
            if (!flush_all()) return false;
            continue;
        }
        written_ += p.len;
        bool whole = p.dst_off % cluster_ == 0 && (p.len == cluster_ || p.dst_off + p.len == dst_->size());
        if (s_.compress && whole) {
            if (!flush_run()) return false;
            packed.push_back(PackedCluster{p.dst_off, b.packed.get() + p.buf_off, p.clen, d, p.len});
            continue;
        }
        if (!flush_packed()) return false;
        if (run_len && run_off + run_len == p.dst_off && run_data + run_len == d) {
            run_len += p.len;
        } else {
            if (!flush_run()) return false;
            run_off = p.dst_off;
            run_data = d;
            run_len = p.len;
        }
    }
    if (!flush_all()) return false;
    if (!progress_to(b.end)) return false;
    throttle();
    return true;
}

// The current batch is full (or the copy is done): hand it to the workers
// and write the previous one meanwhile.
bool Copier::cycle() {
    Batch& b = cur();
    if (pool_) pool_->wait();  // previous batch compressed
    start_workers(b);
    Batch& prev = batches_[cur_ ^ 1];
    if (prev_pending_ && !write_batch(prev)) return false;
    prev_pending_ = true;
    cur_ ^= 1;
    Batch& next = cur();
    next.pieces.clear();
    next.used = 0;
    return true;
}

bool Copier::run() {
    if (s_.progress && !plan_progress()) return false;
    uint64_t base = 0;
    for (Image* src : views_) {
        const uint64_t size = src->size();
        for (uint64_t off = 0; off < size;) {
            if (cur().used + unit_ > capacity_ || cur().pieces.size() > 65536) {
                if (!cycle()) return false;
            }
            uint64_t room = capacity_ - cur().used;
            auto e = status(src, off, std::min<uint64_t>(room, size - off));
            if (!e) return failed(Error{e.error().code, fmt::format("error while reading at byte {}: {}", off, e.error().message)});
            if (e->backing) {
                // Left to the target's backing file: nothing is written.
                cur().end = base + off + e->length;
                off += e->length;
                continue;
            }
            if (!e->data) {
                add_zero_run(base + off, e->length);
                off += e->length;
                continue;
            }
            // Read whole target units so compression and zero detection
            // work on aligned clusters (the part before `off` in this view
            // reads as zero, so re-covering it is harmless).
            uint64_t lead = std::min<uint64_t>((base + off) % unit_, off);
            uint64_t s = off - lead;
            if (lead && !cur().pieces.empty() && cur().pieces.back().dst_off + cur().pieces.back().len > base + s) {
                // Trim the zero run just recorded so pieces do not overlap.
                Piece& z = cur().pieces.back();
                if (!z.in_buffer && z.dst_off <= base + s) {
                    z.len = base + s - z.dst_off;
                    if (z.len == 0) cur().pieces.pop_back();
                } else {
                    s = off;
                }
            }
            uint64_t e_end = off + e->length;
            uint64_t a_end = std::min(size, (base + e_end + unit_ - 1) / unit_ * unit_ - base);
            uint64_t len = std::min(a_end - s, room);
            if (!read_into_batch(src, s, len, base + s)) return false;
            off = s + len;
        }
        base += size;
    }
    if (!cycle()) return false;
    if (pool_) pool_->wait();
    if (!write_batch(batches_[cur_ ^ 1])) return false;
    return progress_to(UINT64_MAX);
}

bool Copier::plan_progress() {
    // qemu-img convert's accounting, so that progress steps match its own:
    // it walks the sources' block status (requests of at most
    // BDRV_REQUEST_MAX_BYTES), counts the runs it copies as data (allocated
    // data; zeroes too with -S 0; with -B only what the top layer has), and
    // reports after each request of at most 2 MiB (one cluster with -c).
    constexpr uint64_t kBuf = 2ULL << 20;
    constexpr uint64_t kMaxRequest = (uint64_t{0x7fffffff} >> 9) << 9;
    const uint64_t chunk = s_.compress ? cluster_ : kBuf;
    auto add = [&](uint64_t start, uint64_t n) {
        if (!runs_.empty()) {
            CountedRun& last = runs_.back();
            if (last.start + last.len == start && last.len % chunk == 0) {
                last.len += n;
                counted_total_ += n;
                return;
            }
        }
        runs_.push_back(CountedRun{start, n, chunk});
        counted_total_ += n;
    };
    uint64_t base = 0;
    for (Image* src : views_) {
        const uint64_t size = src->size();
        uint64_t status_end = 0;
        bool counted = false;
        for (uint64_t pos = 0; pos < size;) {
            if (status_end <= pos) {
                const uint64_t want = std::min(size - pos, kMaxRequest);
                uint64_t len = 0;
                if (s_.top_layer_only) {
                    auto e = src->block_status(pos, want);
                    if (!e) return failed(Error{e.error().code, fmt::format("error while reading at byte {}: {}", pos, e.error().message)});
                    len = e->length;
                    const bool zero = e->kind == ExtentKind::Zero || (e->kind == ExtentKind::Data && e->host_zero &&
                                                                     src->format() == ImageFormat::Raw);
                    counted = e->kind != ExtentKind::Unallocated && (!zero || s_.sparse == 0);
                } else {
                    auto e = chain_status(src, pos, want);
                    if (!e) return failed(Error{e.error().code, fmt::format("error while reading at byte {}: {}", pos, e.error().message)});
                    len = e->length;
                    counted = e->data || s_.sparse == 0;
                }
                status_end = pos + std::max<uint64_t>(len, 1);
            }
            uint64_t n = status_end - pos;
            bool cnt = counted;
            if (s_.compress) {
                // Compressed targets are written in whole clusters: a short
                // run counts as one cluster of data.
                if (n < cluster_) {
                    n = std::min(cluster_, size - pos);
                    cnt = true;
                } else {
                    n = n / cluster_ * cluster_;
                }
            }
            if (cnt) {
                n = std::min(n, chunk);
                add(base + pos, n);
            }
            pos += n;
        }
        base += size;
    }
    return true;
}

bool Copier::progress_to(uint64_t written_end) {
    if (!s_.progress) return true;
    while (run_idx_ < runs_.size()) {
        const CountedRun& r = runs_[run_idx_];
        const uint64_t next = std::min(r.len, run_pos_ + r.chunk);
        if (r.start + next > written_end) break;
        counted_done_ += next - run_pos_;
        run_pos_ = next;
        if (run_pos_ == r.len) {
            ++run_idx_;
            run_pos_ = 0;
        }
        if (!s_.progress(counted_done_, counted_total_)) return failed(cancelled_error());
    }
    return true;
}

// The persistent bitmaps convert --bitmaps copies from `src`, read before
// the target is made (as qemu-img checks them first). Inconsistent ones
// are an error, or skipped with a warning with --skip-broken-bitmaps.
Result<std::vector<qcow2::Bitmap>> source_bitmaps(Image* src, bool skip_broken, const WarnFn& warn) {
    auto* q = qcow2_cast(src);
    if (!q) return fail(ErrorCode::Unsupported, "Source lacks bitmap support");
    auto all = q->read_bitmaps();
    if (!all)
        return fail(all.error().code, "Could not read the bitmaps of '{}': {}", src->filename(), all.error().message);
    std::vector<qcow2::Bitmap> keep;
    for (auto& b : *all) {
        if (!b.in_use) {
            keep.push_back(std::move(b));
        } else if (skip_broken) {
            if (warn) warn(fmt::format("warning: Skipping inconsistent bitmap '{}'", b.name));
        } else {
            return fail(ErrorCode::InvalidState,
                        "Cannot copy inconsistent bitmap '{}'\n"
                        "Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it",
                        b.name);
        }
    }
    return keep;
}

}  // namespace

namespace {
std::atomic<uint64_t> g_convert_runs{0};
}  // namespace

uint64_t convert_runs() { return g_convert_runs.load(); }

Status convert(const ConvertOptions& o) {
    ++g_convert_runs;
    // QEMU 7.2 records no guessed backing format.
    if (!o.backing.empty() && o.backing_format.empty())
        return fail(ErrorCode::InvalidArg, "Use of backing file requires explicit backing format");
    std::vector<ImagePtr> srcs, snaps;
    std::vector<Image*> views;
    uint64_t total = 0;
    for (const ConvertSource& src : o.sources) {
        OpenOptions so;
        so.cache = o.src_cache;
        so.force_share = o.force_share;
        so.key_secret = src.key_secret;
        Result<ImagePtr> s = std::unexpected(Error{});
        if (!src.format.empty()) {
            auto f = parse_driver(src.format);
            if (f) so.format = *f;
            else s = std::unexpected(f.error());
        }
        if (src.format.empty() || so.format) s = open_image(src.path, so);
        if (!s)
            return fail(s.error().code, "Could not open '{}': {}", src.name.empty() ? src.path.string() : src.name,
                        s.error().message);
        Image* v = s->get();
        if (!src.snapshot.empty()) {
            auto* q = qcow2_cast(v);
            std::string key = src.snapshot;
            if (key.starts_with("snapshot.name=")) key = key.substr(14);
            else if (key.starts_with("snapshot.id=")) key = key.substr(12);
            if (!q) return fail(ErrorCode::Unsupported, "Failed to load snapshot: Operation not supported");
            auto sv = q->open_snapshot(key);
            if (!sv) return fail(sv.error().code, "Failed to load snapshot: {}", sv.error().message);
            v = sv->get();
            snaps.push_back(std::move(*sv));
        }
        total += v->size();
        views.push_back(v);
        srcs.push_back(std::move(*s));
    }
    auto ofmt = parse_format(o.target_format);
    if (!ofmt) return std::unexpected(ofmt.error());
    if (o.compress && *ofmt == ImageFormat::Raw)
        return fail(ErrorCode::Unsupported, "Compression not supported for this file format");
    if (o.skip_broken_bitmaps && !o.bitmaps)
        return fail(ErrorCode::InvalidArg, "Use of --skip-broken-bitmaps requires --bitmaps");
    std::vector<qcow2::Bitmap> src_bitmaps;
    if (o.bitmaps) {
        if (views.size() > 1) return fail(ErrorCode::InvalidArg, "Copying bitmaps only possible with single source");
        auto read = source_bitmaps(srcs.front().get(), o.skip_broken_bitmaps, o.warn);
        if (!read) return std::unexpected(read.error());
        src_bitmaps = std::move(*read);
    }

    bool created = false;
    auto target_opts = parse_create_options(*ofmt, o.create_options, o.secrets);
    if (!target_opts) return std::unexpected(target_opts.error());
    if (o.compress && target_opts->encrypt.format != EncryptFormat::None)
        return fail(ErrorCode::Unsupported, "Compression and encryption not supported at the same time");
    if (!o.no_create) {
        auto co = target_opts;
        co->size = total;
        if (!o.backing.empty()) {
            co->backing_file = o.backing;
            co->backing_format = o.backing_format;
        }
        co->warn = o.warn;
        auto st = create_image(o.target, *co);
        if (!st)
            return fail(st.error().code, "{}: error while converting {}: {}", o.target.string(), o.target_format,
                        st.error().message);
        created = true;
    }
    OpenOptions to;
    to.format = *ofmt;
    to.writable = true;
    to.cache = o.cache;
    to.key_secret = target_opts->encrypt.key;
    // qemu-img's raw target: write (and resize when it made the file),
    // sharing the rest; a qcow2 target is an ordinary writer.
    if (*ofmt == ImageFormat::Raw)
        to.lock_perms = created ? LockPerms{kPermConsistentRead | kPermWrite | kPermResize, kPermAll & ~kPermResize}
                                : LockPerms{kPermConsistentRead | kPermWrite, kPermAll};
    auto out = open_image(o.target, to);
    if (!out) return fail(out.error().code, "Could not open '{}': {}", o.target.string(), out.error().message);
    Image* dst = out->get();
    // qemu-img makes the target before it finds that it cannot hold bitmaps
    // (raw, or qcow2 version 2).
    auto* dst_q = qcow2_cast(dst);
    if (o.bitmaps && (*ofmt != ImageFormat::Qcow2 || !dst_q || dst_q->header().version < 3))
        return fail(ErrorCode::Unsupported, "Format driver '{}' does not support bitmaps", o.target_format);
    // Bitmaps go in one by one after the data, and the first whose name the
    // target (convert -n) already has fails the command, as in qemu-img.
    // The target's names are read before its data writes (which set bits
    // in its own enabled bitmaps, as QEMU's do).
    size_t bitmaps_ok = src_bitmaps.size();
    if (!src_bitmaps.empty()) {
        auto have = dst_q->read_bitmaps();
        if (!have)
            return fail(have.error().code, "Could not read the bitmaps of '{}': {}", o.target.string(),
                        have.error().message);
        for (size_t i = 0; i < src_bitmaps.size() && bitmaps_ok == src_bitmaps.size(); ++i)
            for (const auto& h : *have)
                if (h.name == src_bitmaps[i].name) bitmaps_ok = i;
    }
    if (o.no_create && dst->size() < total) return fail(ErrorCode::InvalidArg, "output file is smaller than input file");
    CopySettings cs;
    cs.compress = o.compress;
    // Regions the target may not already read as zero must be zeroed.
    cs.target_fresh = (!o.no_create || o.target_is_zero) && o.backing.empty() && dst->zero_init();
    cs.top_layer_only = !o.backing.empty();
    if (created && dst->backing()) cs.zero_from = dst->backing()->size();
    cs.salvage = o.salvage;
    cs.sparse = o.sparse;
    cs.threads = o.threads;
    cs.rate_limit = o.rate_limit;
    cs.progress = o.progress;
    cs.warn = o.warn;
    Copier copier(views, dst, cs);
    if (!copier.run()) {
        Error e = copier.error();
        if (is_cancelled(e) && created) {
            // Stopped on request: the half-made target goes.
            out->reset();
            std::error_code ec;
            std::filesystem::remove(o.target, ec);
        }
        return std::unexpected(e);
    }
    // Bitmaps go in after the data: the copy's writes must not set bits in
    // the source's bitmaps.
    if (bitmaps_ok > 0) {
        std::vector<qcow2::Bitmap> add(src_bitmaps.begin(), src_bitmaps.begin() + static_cast<long>(bitmaps_ok));
        auto st = dst_q->add_bitmaps(add);
        if (!st) return fail(st.error().code, "Failed to populate bitmaps: {}", st.error().message);
    }
    if (bitmaps_ok < src_bitmaps.size()) {
        const std::string& name = src_bitmaps[bitmaps_ok].name;
        (void)dst->close();
        return fail(ErrorCode::Exists, "Failed to create bitmap {}: Bitmap already exists: {}", name, name);
    }
    return dst->close();
}

}  // namespace vireo::storage
