// JSON output laid out exactly as qemu-img prints it: objects keep QEMU's
// QDict iteration order (hash buckets), pretty-printed with 4 spaces.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace vireo::img {

class QValue;
using QObjectPtr = std::shared_ptr<QValue>;

class QValue {
public:
    enum class Kind { Int, Bool, String, Dict, List };
    static QObjectPtr integer(int64_t v);
    static QObjectPtr boolean(bool v);
    static QObjectPtr string(std::string v);
    static QObjectPtr dict();
    static QObjectPtr list();

    // Dict: insert (later inserts of colliding keys come first, as in QEMU).
    QValue& put(const std::string& key, QObjectPtr v);
    QValue& put(const std::string& key, int64_t v) { return put(key, integer(v)); }
    QValue& put_bool(const std::string& key, bool v) { return put(key, boolean(v)); }
    QValue& put_str(const std::string& key, std::string v) { return put(key, string(std::move(v))); }
    // List: append.
    QValue& append(QObjectPtr v);

    // Pretty JSON as qemu-img's --output=json prints it (no trailing newline).
    [[nodiscard]] std::string to_json(int indent = 0) const;
    // Entries in QDict iteration order.
    [[nodiscard]] std::vector<std::pair<std::string, QObjectPtr>> ordered() const;
    [[nodiscard]] Kind kind() const { return kind_; }
    [[nodiscard]] const std::vector<QObjectPtr>& items() const { return items_; }
    [[nodiscard]] std::string scalar_text() const;  // for human dumps

private:
    Kind kind_ = Kind::Int;
    int64_t i_ = 0;
    bool b_ = false;
    std::string s_;
    std::vector<std::pair<std::string, QObjectPtr>> entries_;  // insertion order
    std::vector<QObjectPtr> items_;
};

std::string json_quote(const std::string& s);

}  // namespace vireo::img
