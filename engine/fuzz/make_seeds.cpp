// Writes the seed corpora of the journal and snapshot fuzz targets (engine/fuzz/corpus):
// segments and snapshots of a partition that ran generated commands (the engine's tests'
// CommandGenerator), as PartitionStore writes them.
//
//   fuzz_seeds engine/fuzz/corpus
#include <filesystem>
#include <iostream>
#include <string>

#include "command_generator.h"
#include "fuzz_support.h"
#include "journal/journal.h"
#include "journal/partition_store.h"
#include "journal/snapshot.h"

namespace fs = std::filesystem;

namespace {

// `batches` batches of `size` commands journaled in `dir`, a snapshot every `every`.
void run(const std::string& dir, std::uint64_t seed, int batches, std::size_t size, std::uint64_t every) {
  venue::StoreOptions options;
  options.dir = dir;
  options.fsync = venue::FsyncPolicy::None;
  options.snapshot_every = every;
  venue::fuzz::Venue venue;
  venue::PartitionStore store(options, 0, venue::fuzz::kInstruments, venue::fuzz::small_exchange());
  store.recover(venue.exchange);
  venue::testing::CommandGenerator generator(seed);
  for (int b = 0; b < batches; ++b) {
    const std::int64_t clock = 1'000 + static_cast<std::int64_t>(venue.exchange.commands_applied());
    store.begin_batch(venue.exchange.commands_applied(), clock);
    for (const venue::Command& command : generator.batch(size)) {
      if (venue.exchange.apply(command, clock) == venue::ApplyResult::Applied) store.add(command);
    }
    store.end_batch();
    store.commit();
    store.maybe_snapshot(venue.exchange);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds CORPUS_DIR\n";
    return 2;
  }
  const fs::path corpus = argv[1];
  fs::create_directories(corpus / "journal");
  fs::create_directories(corpus / "snapshot");
  int written = 0;
  for (const auto& [seed, batches, size] : {std::tuple{1, 1, 1}, std::tuple{2, 4, 8}, std::tuple{3, 12, 24}}) {
    const std::string dir = venue::fuzz::scratch_dir();
    run(dir, static_cast<std::uint64_t>(seed), batches, static_cast<std::size_t>(size), 64);
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      const char* kind = name.starts_with("journal-") ? "journal" : name.starts_with("snapshot-") ? "snapshot" : nullptr;
      if (kind == nullptr || fs::file_size(entry.path()) == 0) continue;
      fs::copy_file(entry.path(), corpus / kind / ("seed" + std::to_string(seed) + "-" + name),
                    fs::copy_options::overwrite_existing);
      ++written;
    }
  }
  std::cout << written << " seeds in " << corpus.string() << "\n";
  return 0;
}
