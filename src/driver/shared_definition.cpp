#include "driver/shared_definition.hpp"

#include <spdlog/spdlog.h>

namespace vireo::driver {

namespace {

const std::shared_ptr<const std::string>& empty_text() {
    static const auto empty = std::make_shared<const std::string>();
    return empty;
}

}  // namespace

// ---------------------------------------------------------------------------
// SharedXml

SharedXml::SharedXml() : text_(empty_text()) {}

SharedXml::SharedXml(std::string text) {
    text.shrink_to_fit();  // kept as long as the definition: no spare capacity
    text_ = std::make_shared<const std::string>(std::move(text));
}

SharedXml& SharedXml::operator=(std::string text) {
    *this = SharedXml(std::move(text));
    return *this;
}

// ---------------------------------------------------------------------------
// DefinitionFacts

DefinitionFacts DefinitionFacts::of(const conf::DomainDef& def) {
    DefinitionFacts f;
    f.name = def.name;
    f.uuid = def.uuid;
    f.title = def.title;
    f.max_memory_kib = def.memory_kib;
    f.memory_kib = def.current_memory_kib.value_or(def.memory_kib);
    f.vcpus = def.vcpus_current.value_or(def.vcpus);
    f.os_type = def.os.type;
    for (const auto& nic : def.devices.interfaces)
        if (!nic.mac.empty()) f.macs.push_back(nic.mac);
    return f;
}

// ---------------------------------------------------------------------------
// DefinitionModel

DefinitionModel DefinitionModel::lazy(SharedXml xml, DefinitionFacts facts) {
    DefinitionModel m;
    m.lazy_ = std::make_shared<Lazy>();
    m.lazy_->xml = std::move(xml);
    m.lazy_->facts = std::move(facts);
    return m;
}

std::shared_ptr<const conf::DomainDef> DefinitionModel::shared() const {
    if (held_ || !lazy_) return held_;
    Lazy& l = *lazy_;
    std::call_once(l.once, [&l] {
        // The XML is our own canonical output of a definition that was
        // parsed (and validated) when it was defined or loaded: parsing it
        // again gives the same model. Validation is not repeated (it could
        // depend on the host, which may have changed since).
        auto parsed = conf::parse_domain_xml(l.xml.str(), conf::ParseFlags{.no_validate = true, .live = false});
        if (parsed) {
            // Aliases are not part of an inactive document: give the model
            // the ones make_definition() gave it when it was defined.
            if (auto st = conf::assign_addresses_and_aliases(*parsed); !st)
                spdlog::error("internal error: the stored definition no longer takes its defaults: {}", st.error().full_message());
            l.def = std::make_shared<const conf::DomainDef>(std::move(*parsed));
            return;
        }
        // Cannot happen unless the formatter and the parser disagree; say so
        // loudly and keep an empty model rather than crash the daemon.
        spdlog::error("internal error: the stored definition no longer parses: {}", parsed.error().full_message());
        l.def = std::make_shared<const conf::DomainDef>();
    });
    return l.def;
}

const conf::DomainDef* DefinitionModel::get() const {
    if (held_) return held_.get();
    if (!lazy_) return nullptr;
    return shared().get();
}

DefinitionFacts DefinitionModel::facts() const {
    if (held_) return DefinitionFacts::of(*held_);
    if (lazy_) return lazy_->facts;
    return {};
}

}  // namespace vireo::driver
