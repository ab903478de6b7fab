#include "cli/img/qjson.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace vireo::img {

namespace {
// QEMU's QDict hash (tdb_hash) and bucket count: iteration walks buckets
// in order, newest entry first inside a bucket.
unsigned qdict_bucket(const std::string& name) {
    uint32_t value = 0x238F13AFu * static_cast<uint32_t>(name.size());
    for (size_t i = 0; i < name.size(); ++i)
        value = value + (static_cast<uint32_t>(static_cast<unsigned char>(name[i])) << (i * 5 % 24));
    return (1103515243u * value + 12345u) % 512u;
}
}  // namespace

QObjectPtr QValue::integer(int64_t v) { auto q = std::make_shared<QValue>(); q->kind_ = Kind::Int; q->i_ = v; return q; }
QObjectPtr QValue::boolean(bool v) { auto q = std::make_shared<QValue>(); q->kind_ = Kind::Bool; q->b_ = v; return q; }
QObjectPtr QValue::string(std::string v) { auto q = std::make_shared<QValue>(); q->kind_ = Kind::String; q->s_ = std::move(v); return q; }
QObjectPtr QValue::dict() { auto q = std::make_shared<QValue>(); q->kind_ = Kind::Dict; return q; }
QObjectPtr QValue::list() { auto q = std::make_shared<QValue>(); q->kind_ = Kind::List; return q; }

QValue& QValue::put(const std::string& key, QObjectPtr v) {
    for (auto& e : entries_)
        if (e.first == key) { e.second = std::move(v); return *this; }
    entries_.emplace_back(key, std::move(v));
    return *this;
}

QValue& QValue::append(QObjectPtr v) {
    items_.push_back(std::move(v));
    return *this;
}

std::vector<std::pair<std::string, QObjectPtr>> QValue::ordered() const {
    std::vector<std::pair<size_t, size_t>> idx;  // (bucket, -insertion)
    for (size_t i = 0; i < entries_.size(); ++i) idx.emplace_back(qdict_bucket(entries_[i].first), i);
    std::stable_sort(idx.begin(), idx.end(), [](auto& a, auto& b) {
        if (a.first != b.first) return a.first < b.first;
        return a.second > b.second;
    });
    std::vector<std::pair<std::string, QObjectPtr>> out;
    for (auto& [b, i] : idx) out.push_back(entries_[i]);
    return out;
}

std::string json_quote(const std::string& s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\b': o += "\\b"; break;
            case '\f': o += "\\f"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) o += fmt::format("\\u{:04X}", c);
                else o += static_cast<char>(c);
        }
    }
    return o + "\"";
}

std::string QValue::scalar_text() const {
    switch (kind_) {
        case Kind::Int: return std::to_string(i_);
        case Kind::Bool: return b_ ? "true" : "false";
        case Kind::String: return s_;
        default: return "";
    }
}

std::string QValue::to_json(int indent) const {
    std::string pad(static_cast<size_t>(indent + 4), ' ');
    std::string close(static_cast<size_t>(indent), ' ');
    switch (kind_) {
        case Kind::Int: return std::to_string(i_);
        case Kind::Bool: return b_ ? "true" : "false";
        case Kind::String: return json_quote(s_);
        case Kind::Dict: {
            auto ord = ordered();
            if (ord.empty()) return "{\n" + close + "}";
            std::string o = "{\n";
            for (size_t i = 0; i < ord.size(); ++i) {
                o += pad + json_quote(ord[i].first) + ": " + ord[i].second->to_json(indent + 4);
                o += i + 1 < ord.size() ? ",\n" : "\n";
            }
            return o + close + "}";
        }
        case Kind::List: {
            if (items_.empty()) return "[\n" + close + "]";
            std::string o = "[\n";
            for (size_t i = 0; i < items_.size(); ++i) {
                o += pad + items_[i]->to_json(indent + 4);
                o += i + 1 < items_.size() ? ",\n" : "\n";
            }
            return o + close + "]";
        }
    }
    return "";
}

}  // namespace vireo::img
