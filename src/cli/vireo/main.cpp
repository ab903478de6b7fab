// vireo: the command line of vireo, virsh's twin (see docs/cli.md).
#include "cli/vireo/app.hpp"

int main(int argc, char** argv) { return vireo::cli::run_vireo(argc, argv); }
