package io.vmd.migration.trigger;

import static org.assertj.core.api.Assertions.assertThat;

import io.vmd.migration.trigger.MigrationTrigger.Vm;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class MigrationTriggerTest {
  private static final long G = 1L << 30;

  private static List<String> names(List<Vm> vms) {
    return vms.stream().map(Vm::name).toList();
  }

  @Test
  void nothingMovesAtOrUnderTheHighWatermark() {
    MigrationTrigger t = new MigrationTrigger(20 * G, 16 * G);
    assertThat(t.choose(List.of(new Vm("a", 10 * G), new Vm("b", 10 * G)))).isEmpty();
  }

  @Test
  void oneVmIsEnoughAndTheSmallestSufficientOneGoes() {
    // Sum 22 over high 20; must shed 6 to reach low 16: c (6) suffices and moves less than a (9) or b (7).
    MigrationTrigger t = new MigrationTrigger(20 * G, 16 * G);
    List<Vm> vms = List.of(new Vm("a", 9 * G), new Vm("b", 7 * G), new Vm("c", 6 * G));
    assertThat(names(t.choose(vms))).containsExactly("c");
  }

  @Test
  void twoVmsWhenNoSingleOneShedsEnough() {
    // Sum 24, shed 10 to reach 14: no single VM has 10; pairs {6,4} = 10 is the least that suffices.
    MigrationTrigger t = new MigrationTrigger(20 * G, 14 * G);
    List<Vm> vms = List.of(new Vm("a", 8 * G), new Vm("b", 6 * G), new Vm("c", 4 * G), new Vm("d", 3 * G),
        new Vm("e", 3 * G));
    assertThat(names(t.choose(vms))).containsExactlyInAnyOrder("b", "c");
  }

  @Test
  void everyVmWhenTheLowWatermarkIsZero() {
    MigrationTrigger t = new MigrationTrigger(G, 0);
    assertThat(t.choose(List.of(new Vm("a", G), new Vm("b", G)))).hasSize(2);
  }

  @Test
  void heuristicForManyVmsPicksTheFewestAndNeverFallsShort() {
    long seed = System.nanoTime();
    System.out.println("seed " + seed);
    Random r = new Random(seed);
    for (int round = 0; round < 200; round++) {
      int n = 21 + r.nextInt(40);
      List<Vm> vms = new ArrayList<>();
      long sum = 0;
      for (int i = 0; i < n; i++) {
        long w = (1 + r.nextInt(64)) * (G / 16);
        vms.add(new Vm("vm" + i, w));
        sum += w;
      }
      long low = (long) (sum * (0.3 + 0.5 * r.nextDouble()));
      MigrationTrigger t = new MigrationTrigger(low, low);
      List<Vm> chosen = t.choose(vms);
      long moved = chosen.stream().mapToLong(Vm::workingSetBytes).sum();
      assertThat(sum - moved).as("seed %d round %d", seed, round).isLessThanOrEqualTo(low);
      // The fewest: the k largest are the only way to shed with k; k−1 largest must fall short.
      List<Long> sorted = vms.stream().map(Vm::workingSetBytes).sorted((a, b) -> Long.compare(b, a)).toList();
      long top = 0;
      for (int i = 0; i < chosen.size() - 1; i++) {
        top += sorted.get(i);
      }
      assertThat(sum - top).as("seed %d round %d: fewer VMs would do", seed, round).isGreaterThan(low);
    }
  }

  @Test
  void exactSearchMatchesBruteForceOnSmallHosts() {
    long seed = System.nanoTime();
    System.out.println("seed " + seed);
    Random r = new Random(seed);
    for (int round = 0; round < 300; round++) {
      int n = 1 + r.nextInt(10);
      List<Vm> vms = new ArrayList<>();
      long sum = 0;
      for (int i = 0; i < n; i++) {
        long w = 1 + r.nextInt(100);
        vms.add(new Vm("vm" + i, w));
        sum += w;
      }
      long low = r.nextInt((int) sum);
      List<Vm> chosen = new MigrationTrigger(low, low).choose(vms);
      // Brute force over every subset: fewest VMs first, then least moved.
      int bestCount = Integer.MAX_VALUE;
      long bestMoved = Long.MAX_VALUE;
      for (int mask = 0; mask < 1 << n; mask++) {
        long moved = 0;
        for (int i = 0; i < n; i++) {
          if ((mask & 1 << i) != 0) {
            moved += vms.get(i).workingSetBytes();
          }
        }
        int count = Integer.bitCount(mask);
        if (sum - moved <= low && (count < bestCount || count == bestCount && moved < bestMoved)) {
          bestCount = count;
          bestMoved = moved;
        }
      }
      assertThat(chosen).as("seed %d round %d", seed, round).hasSize(bestCount);
      assertThat(chosen.stream().mapToLong(Vm::workingSetBytes).sum()).isEqualTo(bestMoved);
    }
  }
}
