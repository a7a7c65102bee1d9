#pragma once
// One function per subcommand; each parses its own flags, prints --help, and returns the exit
// code. Errors thrown as squeeze::Error are caught in main and printed as one line.

namespace squeeze::cli {
int cmd_run(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_perplexity(int argc, char** argv);
int cmd_logits(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_serve(int argc, char** argv);
int cmd_chat(int argc, char** argv);
}  // namespace squeeze::cli
