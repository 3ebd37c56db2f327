// Where the matching thread runs and where its pools live: --cpus picks from the CPUs
// the process may use; pools take hugepages when there are some and say so.
#include <gtest/gtest.h>

#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "book/object_pool.h"
#include "book/order.h"
#include "server/cpu_affinity.h"
#include "server/partition_worker.h"

namespace venue {
namespace {

TEST(CpuAffinity, AutoTakesTheLastAllowedCpuOfSomeOfTheMachines) {
  int cpu = -1;
  std::string why;
  ASSERT_TRUE(choose_cpu("auto", {0, 2, 5}, 8, cpu, why));
  EXPECT_EQ(cpu, 5);
  ASSERT_TRUE(choose_cpu("auto", {1}, 2, cpu, why));  // a Guaranteed pod's exclusive CPU
  EXPECT_EQ(cpu, 1);
}

TEST(CpuAffinity, AutoLeavesTheThreadUnpinnedWhenItMayRunOnEveryCpu) {
  // Every CPU is shared with whatever else runs on the machine: pinned to one, the
  // thread would wait for it while another is idle.
  int cpu = 3;
  std::string why;
  ASSERT_TRUE(choose_cpu("auto", {0, 1}, 2, cpu, why));
  EXPECT_EQ(cpu, -1);
}

TEST(CpuAffinity, AListTakesItsFirstAllowedCpu) {
  int cpu = -1;
  std::string why;
  ASSERT_TRUE(choose_cpu("1,3-6", {0, 4, 5}, 8, cpu, why));
  EXPECT_EQ(cpu, 4);
}

TEST(CpuAffinity, AListOfNoAllowedCpuIsRefused) {
  int cpu = -1;
  std::string why;
  EXPECT_FALSE(choose_cpu("7", {0, 1}, 2, cpu, why));
  EXPECT_NE(why.find("allowed"), std::string::npos);
}

TEST(CpuAffinity, NoneLeavesTheThreadUnpinned) {
  int cpu = 3;
  std::string why;
  ASSERT_TRUE(choose_cpu("none", {0, 1}, 2, cpu, why));
  EXPECT_EQ(cpu, -1);
}

TEST(CpuAffinity, AllowedCpusListsThisProcessesSet) {
  const std::vector<int> allowed = allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  EXPECT_LE(static_cast<int>(allowed.size()), online_cpus());
  EXPECT_EQ(cpu_list({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
}

TEST(CpuAffinity, WorkerPinsItsMatchingThreadToTheChosenCpu) {
  WorkerOptions options;
  options.cpu = allowed_cpus().back();
  PartitionWorker worker(options);
  EXPECT_EQ(worker.pinned_cpu(), options.cpu);
}

long free_hugepages() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long value = 0;
  while (meminfo >> key >> value) {
    if (key == "HugePages_Free:") return value;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

TEST(PoolMemory, TryFallsBackToNormalPagesWithoutHugepagesAndUsesThemWhenThere) {
  ObjectPool<Order> pool(1024, HugePages::Try);
  EXPECT_EQ(pool.on_hugepages(), free_hugepages() > 0);
  EXPECT_GE(pool.capacity(), 1024u);
}

TEST(PoolMemory, RequireFailsWithoutHugepages) {
  if (free_hugepages() > 0) GTEST_SKIP() << "this machine has hugepages reserved";
  EXPECT_THROW(ObjectPool<Order>(1024, HugePages::Require), std::bad_alloc);
}

TEST(PoolMemory, OffNeverUsesHugepages) {
  ObjectPool<Order> pool(1024, HugePages::Off);
  EXPECT_FALSE(pool.on_hugepages());
}

}  // namespace
}  // namespace venue
