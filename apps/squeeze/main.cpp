// squeeze: the command-line front end. Dispatches to one subcommand; no engine logic here.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "commands.h"
#include "util/error.h"

namespace {

struct Command {
  const char* name;
  int (*fn)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"run", squeeze::cli::cmd_run, "generate a continuation of a prompt"},
    {"tokenize", squeeze::cli::cmd_tokenize, "print the token ids of a text"},
    {"info", squeeze::cli::cmd_info, "describe a model file: architecture, tokenizer, tensors"},
    {"perplexity", squeeze::cli::cmd_perplexity, "perplexity of a text file (llama.cpp's method)"},
    {"logits", squeeze::cli::cmd_logits, "write the logits of every position of a token list"},
    {"bench", squeeze::cli::cmd_bench, "measure prompt and generation speed (like llama-bench)"},
    {"chat", squeeze::cli::cmd_chat, "chat with the model in the terminal (its chat template)"},
    {"serve", squeeze::cli::cmd_serve, "serve the model over an OpenAI-compatible HTTP API"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: squeeze <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(out, "\nRun 'squeeze <command> --help' for the options of a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.fn(argc - 1, argv + 1);
    } catch (const squeeze::Error& e) {
      std::fprintf(stderr, "squeeze %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "squeeze %s: error: out of memory\n", c.name);
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "squeeze %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "squeeze: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
