// llamacpp_ref: a small reference driver against llama.cpp's libllama (the llama.cpp vendored in
// the llama-cpp-python sdist), used to make the parity fixtures in tests/fixtures/llamacpp/.
// Built by bench/peers/llamacpp.sh. Not part of squeeze.
//
//   llamacpp_ref info   -m MODEL
//       system info and the context settings used.
//   llamacpp_ref greedy -m MODEL [-n 64] [-t 2] PROMPT_FILE...
//       for each file (raw UTF-8 prompt bytes): tokenize with add_special=true, parse_special=true
//       (BOS added, like llama-cli/llama-simple), prefill in one batch, then decode one token at a
//       time taking the argmax of the logits (lowest id on ties; no sampler chain). Stops after n
//       tokens or at an end-of-generation token (not emitted). Prints
//         PROMPT_IDS <ids...>
//         GEN_IDS <ids...>
//         STOP <length|eog>
//   llamacpp_ref ppl -m MODEL -f TEXT [-c 512] [--chunks N] [-t 2]
//       llama-perplexity's default algorithm, one chunk per decode (n_batch = n_ctx): tokenize the
//       file with add_special=true, parse_special=false; chunk k = tokens [k*n_ctx, (k+1)*n_ctx)
//       with its first token replaced by BOS; logits at positions n_ctx/2 .. n_ctx-2 score the
//       next token. Prints
//         N_TOKENS <n>
//         TOKENS <all ids of the file>
//         CHUNK <k> TOP1 <argmax at each scored position>
//         CHUNK <k> NLL <sum of nll over the chunk> PPL_RUNNING <value>
//         PPL <value>
#include "llama.h"

#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char * g_flash_attn = "unknown";  // resolved "auto" flash-attn setting, read from libllama's log

struct Args {
    std::string cmd, model, text;
    int n_predict = 64;
    int n_ctx = 512;
    int n_chunks = -1;
    int n_threads = 2;
    std::vector<std::string> files;
};

[[noreturn]] void die(const char * msg) {
    fprintf(stderr, "llamacpp_ref: %s\n", msg);
    exit(1);
}

std::string read_file(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) die(("cannot open " + path).c_str());
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<llama_token> tokenize(const llama_vocab * vocab, const std::string & text, bool parse_special) {
    int n = -llama_tokenize(vocab, text.data(), (int32_t) text.size(), nullptr, 0, true, parse_special);
    std::vector<llama_token> out(n);
    if (llama_tokenize(vocab, text.data(), (int32_t) text.size(), out.data(), n, true, parse_special) != n) {
        die("tokenize failed");
    }
    return out;
}

int argmax(const float * logits, int n_vocab) {
    int best = 0;
    for (int i = 1; i < n_vocab; ++i) {
        if (logits[i] > logits[best]) best = i;
    }
    return best;
}

void print_ids(const char * tag, const std::vector<llama_token> & ids) {
    printf("%s", tag);
    for (auto t : ids) printf(" %d", t);
    printf("\n");
}

llama_context_params ctx_params(const Args & a, int n_ctx, int n_batch) {
    llama_context_params p = llama_context_default_params();  // F16 KV, flash-attn auto
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_ubatch = n_batch;
    p.n_seq_max = 1;
    p.n_threads = a.n_threads;
    p.n_threads_batch = a.n_threads;
    return p;
}

void decode(llama_context * ctx, llama_batch_ext * batch, const llama_token * toks, int n, int pos0,
            bool all_logits, int first_logit = 0) {
    llama_batch_ext_clear(batch);
    for (int i = 0; i < n; ++i) {
        int idx = llama_batch_ext_add_token(batch, 0, toks[i]);
        if (idx < 0) die("batch add failed");
        llama_pos pos = pos0 + i;
        llama_batch_ext_set_pos(batch, idx, &pos);
        bool out = all_logits ? (pos0 + i >= first_logit) : (i == n - 1);
        if (out) llama_batch_ext_set_output_logits(batch, idx, true);
    }
    if (llama_process(ctx, LLAMA_PROCESS_TYPE_DECODE, batch) != 0) die("decode failed");
}

int cmd_greedy(const Args & a, llama_model * model) {
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    for (const auto & file : a.files) {
        std::string prompt = read_file(file);
        auto ids = tokenize(vocab, prompt, true);
        const int n_prompt = (int) ids.size();
        llama_context * ctx = llama_init_from_model(model, ctx_params(a, n_prompt + a.n_predict, std::max(n_prompt, 1)));
        if (!ctx) die("context init failed");
        llama_batch_ext * batch = llama_batch_ext_init(ctx);
        print_ids("PROMPT_IDS", ids);
        decode(ctx, batch, ids.data(), n_prompt, 0, false);
        std::vector<llama_token> gen;
        const char * stop = "length";
        for (int i = 0; i < a.n_predict; ++i) {
            llama_token t = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
            if (llama_vocab_is_eog(vocab, t)) {
                stop = "eog";
                break;
            }
            gen.push_back(t);
            if (i + 1 < a.n_predict) decode(ctx, batch, &t, 1, n_prompt + i, false);
        }
        print_ids("GEN_IDS", gen);
        printf("STOP %s\n", stop);
        printf("FLASH_ATTN %s\n", g_flash_attn);
        fflush(stdout);
        llama_batch_ext_free(batch);
        llama_free(ctx);
    }
    return 0;
}

int cmd_ppl(const Args & a, llama_model * model) {
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    const int n_ctx = a.n_ctx;
    auto tokens = tokenize(vocab, read_file(a.text), false);
    printf("N_TOKENS %zu\n", tokens.size());
    print_ids("TOKENS", tokens);
    int n_chunk = (int) tokens.size() / n_ctx;
    if (a.n_chunks >= 0 && a.n_chunks < n_chunk) n_chunk = a.n_chunks;
    if (n_chunk < 1) die("text too short");
    llama_context * ctx = llama_init_from_model(model, ctx_params(a, n_ctx, n_ctx));
    if (!ctx) die("context init failed");
    llama_batch_ext * batch = llama_batch_ext_init(ctx);
    const int first = n_ctx / 2;
    const bool add_bos = llama_vocab_get_add_bos(vocab);
    double nll = 0.0;
    long count = 0;
    for (int k = 0; k < n_chunk; ++k) {
        std::vector<llama_token> chunk(tokens.begin() + (long) k * n_ctx, tokens.begin() + (long) (k + 1) * n_ctx);
        if (add_bos) chunk[0] = llama_vocab_bos(vocab);
        llama_memory_clear(llama_get_memory(ctx), true);
        decode(ctx, batch, chunk.data(), n_ctx, 0, true, first);
        std::vector<llama_token> top1;
        double chunk_nll = 0.0;
        for (int j = first; j < n_ctx - 1; ++j) {
            const float * l = llama_get_logits_ith(ctx, j);
            int am = argmax(l, n_vocab);
            top1.push_back(am);
            // same formula as perplexity.cpp's log_softmax: float exp, double sum
            float maxl = l[am];
            double sum = 0.0;
            for (int v = 0; v < n_vocab; ++v) sum += expf(l[v] - maxl);
            const llama_token next = tokens[(long) k * n_ctx + j + 1];
            chunk_nll += -(l[next] - maxl - std::log(sum));
        }
        nll += chunk_nll;
        count += n_ctx - 1 - first;
        printf("CHUNK %d TOP1", k);
        for (auto t : top1) printf(" %d", t);
        printf("\nCHUNK %d NLL %.9f PPL_RUNNING %.6f\n", k, chunk_nll, std::exp(nll / count));
        fflush(stdout);
    }
    printf("PPL %.6f\n", std::exp(nll / count));
    printf("FLASH_ATTN %s\n", g_flash_attn);
    llama_batch_ext_free(batch);
    llama_free(ctx);
    return 0;
}

}  // namespace

int main(int argc, char ** argv) {
    std::setlocale(LC_NUMERIC, "C");
    if (argc < 2) die("usage: llamacpp_ref info|greedy|ppl -m MODEL ...");
    Args a;
    a.cmd = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string s = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) die(("missing value for " + s).c_str());
            return argv[++i];
        };
        if (s == "-m") a.model = next();
        else if (s == "-f") a.text = next();
        else if (s == "-n") a.n_predict = std::atoi(next().c_str());
        else if (s == "-c") a.n_ctx = std::atoi(next().c_str());
        else if (s == "-t") a.n_threads = std::atoi(next().c_str());
        else if (s == "--chunks") a.n_chunks = std::atoi(next().c_str());
        else a.files.push_back(s);
    }
    if (a.model.empty()) die("-m MODEL required");

    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (strstr(text, "Flash Attention enabled")) g_flash_attn = "enabled";
        if (strstr(text, "Flash Attention not supported")) g_flash_attn = "disabled";
        if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
    }, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(a.model.c_str(), mp);
    if (!model) die("cannot load model");

    int rc = 0;
    if (a.cmd == "info") {
        llama_context_params p = llama_context_default_params();
        printf("SYSTEM %s\n", llama_print_system_info());
        printf("DEFAULTS flash_attn_type=%d type_k=%d type_v=%d n_threads=%d\n", (int) p.flash_attn_type,
               (int) p.type_k, (int) p.type_v, a.n_threads);
        char desc[256];
        llama_model_desc(model, desc, sizeof(desc));
        printf("MODEL %s\n", desc);
    } else if (a.cmd == "greedy") {
        rc = cmd_greedy(a, model);
    } else if (a.cmd == "ppl") {
        if (a.text.empty()) die("-f TEXT required");
        rc = cmd_ppl(a, model);
    } else {
        die("unknown command");
    }
    llama_model_free(model);
    llama_backend_free();
    return rc;
}
