// The out-of-line parts of fmt, compiled into the `vireo` and `vireo-img`
// executables so that they need no libfmt.so (and, with -static-libstdc++,
// no shared C++ library at all). Both run once per command and many commands
// take a few milliseconds, so the dynamic loader's work was a large part of
// their time (see vireo/standalone.cmake and img/CMakeLists.txt).
//
// The libraries are compiled against the shared fmt (FMT_SHARED); fmt ships
// the definitions of its exported functions as a header for exactly this
// use. The explicit instantiations are the templates its public headers
// declare but do not define. Whatever is missing still links from
// libfmt.so (which then stays needed): check `ldd bin/vireo-img`.
#include <fmt/format-inl.h>

namespace fmt {
inline namespace v9 {
namespace detail {
template auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template locale_ref::locale_ref(const std::locale& loc);
template auto locale_ref::get<std::locale>() const -> std::locale;
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl(locale_ref) -> char;
}  // namespace detail
}  // namespace v9
}  // namespace fmt
