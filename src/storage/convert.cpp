#include "cli/img/convert_copy.hpp"

#include <algorithm>
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

namespace vireo::img {

using namespace storage;

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

class Copier {
public:
    Copier(const std::vector<Image*>& views, Image* dst, const CopySettings& s, Progress& p)
        : views_(views), dst_(dst), s_(s), progress_(p) {
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

    bool run();

private:
    Batch& cur() { return batches_[cur_]; }
    bool add_zero_run(uint64_t dst_off, uint64_t len);
    bool read_into_batch(Image* src, uint64_t src_off, uint64_t len, uint64_t dst_off);
    Status salvage_read(Image* src, uint64_t off, char* buf, uint64_t len);
    bool cycle();
    void start_workers(Batch& b);
    bool write_batch(Batch& b);
    bool write_plain(uint64_t off, const char* data, uint64_t len);
    void throttle();
    bool fail_write(uint64_t off, const Error& e) {
        report(fmt::format("error while writing at byte {}: {}", off, e.message));
        return false;
    }

    const std::vector<Image*>& views_;
    Image* dst_;
    const CopySettings& s_;
    Progress& progress_;
    uint64_t cluster_ = 65536, unit_ = 65536, capacity_ = 0, total_ = 0;
    Batch batches_[2];
    int cur_ = 0;
    bool prev_pending_ = false;  // batches_[cur_ ^ 1] is being compressed
    std::unique_ptr<WorkerPool> pool_;
    uint64_t written_ = 0;
    std::chrono::steady_clock::time_point t0_;
    std::vector<char> backing_buf_;
};

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
            report(fmt::format("warning: error while reading offset {}: {}", off + p, st.error().full_message()));
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
    if (!st) {
        report(fmt::format("error while reading at byte {}: {}", src_off, st.error().message));
        return false;
    }
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
        p.zero = all_zero(d, p.len);
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
            if (!s_.target_fresh) {
                auto z = dst_->write_zeroes(p.dst_off, p.len, true);
                if (!z) return fail_write(p.dst_off, z.error());
            }
            skip = true;
        }
        const char* d = p.in_buffer ? b.raw.get() + p.buf_off : nullptr;
        if (!skip && s_.skip_same_as_backing && dst_->backing() && p.dst_off + p.len <= dst_->backing()->size()) {
            backing_buf_.resize(p.len);
            auto r = dst_->backing()->read(p.dst_off, backing_buf_.data(), p.len);
            if (r && std::memcmp(backing_buf_.data(), d, p.len) == 0) skip = true;
        }
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
    progress_.update(static_cast<double>(b.end) / static_cast<double>(std::max<uint64_t>(total_, 1)));
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
    uint64_t base = 0;
    for (Image* src : views_) {
        const uint64_t size = src->size();
        for (uint64_t off = 0; off < size;) {
            if (cur().used + unit_ > capacity_ || cur().pieces.size() > 65536) {
                if (!cycle()) return false;
            }
            uint64_t room = capacity_ - cur().used;
            auto e = chain_status(src, off, std::min<uint64_t>(room, size - off));
            if (!e) {
                report(fmt::format("error while reading at byte {}: {}", off, e.error().message));
                return false;
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
    return write_batch(batches_[cur_ ^ 1]);
}

}  // namespace

bool copy_images(const std::vector<Image*>& views, Image* dst, const CopySettings& s, Progress& progress) {
    Copier c(views, dst, s, progress);
    return c.run();
}

}  // namespace vireo::img
