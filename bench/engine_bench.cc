// Engine benchmarks: decision latency (mean, p50, p99) and compile time for
// rule sets of 10 to 100k rules, decision-structure memory per rule, and the
// work of a BatchAuthorize call without gRPC (parse, decide, serialize), and
// the machine's memory latency at the structure's sizes (BM_DependentLoad).
//
// Each decision is timed on its own with steady_clock to get percentiles;
// the clock's own cost (reported as clock_ns) is included in p50/p99. Each
// request is parsed just before its decision, untimed, as in pdpd.
//   build/bench/engine_bench --benchmark_filter=Decide
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "absl/time/clock.h"
#include "bench/workload.h"
#include "benchmark/benchmark.h"
#include "engine/compiler.h"
#include "google/protobuf/arena.h"
#include "service/services.h"

namespace pdp::bench {
namespace {

struct Fixture {
  std::shared_ptr<const engine::Policy> policy;
  std::vector<WorkloadRequest> requests;
  // The same requests serialized, for BM_Decide to parse one at a time as
  // pdpd does; and each copied onto one arena in the order they are
  // decided, for BM_DecidePooled, so that their layout does not depend on
  // what generating and compiling the rule set left on the heap.
  std::vector<std::string> serialized;
  std::unique_ptr<google::protobuf::Arena> arena;
  std::vector<const v1::AuthorizeRequest*> arena_requests;
  // What the mix asks of the engine, so sizes can be compared fairly: the
  // share of each expected decision and the candidate rules per request
  // (from an explain run: one trace entry per candidate).
  double permit_share = 0, deny_share = 0, not_applicable_share = 0;
  double candidates_mean = 0;
  int candidates_max = 0;
};

void DescribeMix(Fixture& f) {
  if (!f.policy || f.requests.empty()) return;
  size_t permit = 0, deny = 0, candidates = 0;
  for (const WorkloadRequest& w : f.requests) {
    permit += w.expect == Expect::kPermit;
    deny += w.expect == Expect::kDeny;
    v1::AuthorizeRequest explained = w.request;
    explained.set_explain(true);
    v1::AuthorizeResponse response;
    f.policy->Evaluate(explained, absl::Now(), &response);
    candidates += response.trace_size();
    f.candidates_max = std::max(f.candidates_max, response.trace_size());
  }
  const double n = static_cast<double>(f.requests.size());
  f.permit_share = permit / n;
  f.deny_share = deny / n;
  f.not_applicable_share = 1 - f.permit_share - f.deny_share;
  f.candidates_mean = candidates / n;
}

const Fixture& GetFixture(int rules) {
  static std::map<int, Fixture> cache;
  auto it = cache.find(rules);
  if (it == cache.end()) {
    Fixture f;
    engine::CompileResult compiled = engine::Compile(MakeRuleSet(rules));
    f.policy = compiled.policy;
    f.requests = MakeRequests(rules, 3000);
    DescribeMix(f);
    f.arena = std::make_unique<google::protobuf::Arena>();
    for (const WorkloadRequest& w : f.requests) {
      auto* copy = google::protobuf::Arena::CreateMessage<v1::AuthorizeRequest>(f.arena.get());
      *copy = w.request;
      f.arena_requests.push_back(copy);
      f.serialized.push_back(w.request.SerializeAsString());
    }
    it = cache.emplace(rules, std::move(f)).first;
  }
  return it->second;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// Where the request of each timed decision comes from.
enum class RequestSource {
  // Parsed from its bytes onto an arena just before the decision (not
  // timed), as pdpd parses each call's request onto the call's arena: the
  // evaluator reads a request that is in the cache, as in the server.
  kJustParsed,
  // Read from the fixture's pool of 3000 requests, each last touched 3000
  // decisions earlier: the request's own lines are cache misses too, more
  // of them the more of the cache the rule set's structure takes (how this
  // benchmark measured until 2026-12-04; kept to compare).
  kPool,
};

void Decide(benchmark::State& state, RequestSource source) {
  const Fixture& f = GetFixture(static_cast<int>(state.range(0)));
  if (!f.policy) {
    state.SkipWithError("rule set did not compile");
    return;
  }
  std::vector<double> ns;
  ns.reserve(1 << 20);
  v1::AuthorizeResponse response;
  const absl::Time now = absl::Now();
  google::protobuf::Arena arena;
  size_t i = 0, wrong = 0;
  for (auto _ : state) {
    const size_t k = i++ % f.requests.size();
    const WorkloadRequest& w = f.requests[k];
    const v1::AuthorizeRequest* request = f.arena_requests[k];
    if (source == RequestSource::kJustParsed) {
      arena.Reset();
      auto* parsed = google::protobuf::Arena::CreateMessage<v1::AuthorizeRequest>(&arena);
      if (!parsed->ParseFromString(f.serialized[k])) {
        state.SkipWithError("request did not parse");
        return;
      }
      request = parsed;
    }
    const auto start = std::chrono::steady_clock::now();
    f.policy->Evaluate(*request, now, &response);
    const auto end = std::chrono::steady_clock::now();
    if (ns.size() < ns.capacity()) ns.push_back(std::chrono::duration<double, std::nano>(end - start).count());
    wrong += response.decision() != DecisionOf(w.expect);
  }
  double sum = 0;
  for (double v : ns) sum += v;
  state.counters["mean_ns"] = ns.empty() ? 0 : sum / static_cast<double>(ns.size());
  state.counters["p50_ns"] = Percentile(ns, 0.50);
  state.counters["p99_ns"] = Percentile(ns, 0.99);
  state.counters["wrong"] = static_cast<double>(wrong);
  state.counters["rules"] = static_cast<double>(f.policy->rule_count());
  state.counters["candidates"] = f.candidates_mean;
  state.counters["candidates_max"] = f.candidates_max;
  state.counters["permit"] = f.permit_share;
  state.counters["deny"] = f.deny_share;
  state.counters["bytes_per_rule"] =
      static_cast<double>(f.policy->memory_bytes()) / f.policy->rule_count();
}

// The decision as pdpd makes it. The iteration's time also counts the
// untimed parse; the decision's own mean is the mean_ns counter.
void BM_Decide(benchmark::State& state) { Decide(state, RequestSource::kJustParsed); }
BENCHMARK(BM_Decide)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000)->Arg(100000);

// The same decisions on requests from the pool (RequestSource::kPool).
void BM_DecidePooled(benchmark::State& state) { Decide(state, RequestSource::kPool); }
BENCHMARK(BM_DecidePooled)->Arg(100)->Arg(100000);

void BM_Compile(benchmark::State& state) {
  const v1::RuleSet rule_set = MakeRuleSet(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    engine::CompileResult compiled = engine::Compile(rule_set);
    benchmark::DoNotOptimize(compiled.policy);
  }
  state.SetLabel("per compile");
}
BENCHMARK(BM_Compile)->Arg(10)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);

// What a BatchAuthorize call of 50 requests costs pdpd besides gRPC, per
// decision: parse the call's bytes onto the call's arena (pdpd's own
// allocator), decide each request, serialize the response, free the arena
// (10k rules). range(0) picks how far it goes: 0 parse only, 1 parse and
// decide, 2 everything. range(1) picks the batches: 0 the request mix of
// BM_Decide, each request complete; 1 one user's requests, the subject and
// environment sent once in the common part (MakeCommonBatches). The service
// benchmarks' batch ratio is bounded by this work.
void BM_BatchCallWork(benchmark::State& state) {
  const Fixture& f = GetFixture(10000);
  if (!f.policy) {
    state.SkipWithError("rule set did not compile");
    return;
  }
  constexpr int kBatch = 50;
  const int stage = static_cast<int>(state.range(0));
  std::vector<WorkloadBatch> batches;
  if (state.range(1) == 0) {
    for (size_t start = 0; start + kBatch <= f.requests.size(); start += kBatch) {
      WorkloadBatch& w = batches.emplace_back();
      for (int i = 0; i < kBatch; ++i) {
        const WorkloadRequest& r = f.requests[start + i];
        *w.batch.add_requests() = r.request;
        w.expected.push_back(DecisionOf(r.expect));
      }
    }
  } else {
    batches = MakeCommonBatches(10000, 64, kBatch);
  }
  std::vector<std::string> calls;
  for (const WorkloadBatch& w : batches) calls.push_back(w.batch.SerializeAsString());
  service::ArenaMessageAllocator<v1::BatchAuthorizeRequest, v1::BatchAuthorizeResponse> allocator;
  const absl::Time now = absl::Now();
  std::string out;
  size_t i = 0, wrong = 0;
  for (auto _ : state) {
    const size_t call = i++ % calls.size();
    auto* holder = allocator.AllocateMessages();
    v1::BatchAuthorizeRequest* request = holder->request();
    if (!request->ParseFromString(calls[call])) {
      state.SkipWithError("parse failed");
      return;
    }
    if (stage >= 1) {
      v1::BatchAuthorizeResponse* response = holder->response();
      response->mutable_responses()->Reserve(kBatch);
      // As AuthorizationService::BatchAuthorize decides.
      const v1::AuthorizeRequest* common = request->has_common() ? &request->common() : nullptr;
      for (const v1::AuthorizeRequest& item : request->requests()) {
        f.policy->Evaluate(item, common, now, response->add_responses());
      }
      for (int k = 0; k < kBatch; ++k) {
        wrong += response->responses(k).decision() != batches[call].expected[k];
      }
      if (stage >= 2) {
        out.clear();
        response->SerializeToString(&out);
        benchmark::DoNotOptimize(out.data());
      }
    }
    holder->Release();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBatch);
  state.counters["ns_per_decision"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBatch,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["wrong"] = static_cast<double>(wrong);
  state.counters["request_bytes"] = static_cast<double>(calls[0].size());
  state.counters["response_bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_BatchCallWork)->ArgsProduct({{0, 1, 2}, {0, 1}});

void BM_ClockOverhead(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(std::chrono::steady_clock::now());
    benchmark::DoNotOptimize(std::chrono::steady_clock::now());
  }
}
BENCHMARK(BM_ClockOverhead);

// The machine's memory latency while the engine is measured: one dependent
// load after another through a random cycle of 64-byte lines spread over
// range(0) MiB. Within 1 MiB the lines stay in the core's caches; 80 MiB is
// about a 100k-rule decision structure. On a shared host this moves with
// other tenants' use of the last-level cache and memory, and so does the
// 100k-rule p50 (bench/README.md, "What the growth target asks of memory").
void BM_DependentLoad(benchmark::State& state) {
  struct alignas(64) Line {
    size_t next;
  };
  const size_t count = static_cast<size_t>(state.range(0)) * (size_t{1} << 20) / sizeof(Line);
  std::vector<size_t> order(count);
  for (size_t i = 0; i < count; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  std::vector<Line> lines(count);
  for (size_t i = 0; i < count; ++i) lines[order[i]].next = order[(i + 1) % count];
  size_t at = order[0];
  for (auto _ : state) {
    at = lines[at].next;
    benchmark::DoNotOptimize(at);
  }
}
BENCHMARK(BM_DependentLoad)->ArgName("MiB")->Arg(1)->Arg(8)->Arg(80);

}  // namespace
}  // namespace pdp::bench

BENCHMARK_MAIN();
