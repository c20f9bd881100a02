package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Help as picocli wraps it: every description is made of paragraphs (never lines broken by hand, which
 * picocli would wrap again into short orphan lines), it fits 80 and 120 columns, and the README shows
 * {@code vmd --help} as it is.
 */
class VmdHelpTest {

  @Test
  void everyDescriptionIsParagraphsThatPicocliWraps() {
    List<String> handBroken = new ArrayList<>();
    for (CommandLine c : all(new CommandLine(new Vmd()))) {
      CommandSpec spec = c.getCommandSpec();
      check(spec.qualifiedName(), spec.usageMessage().description(), handBroken);
      for (ArgSpec a : spec.args()) {
        check(spec.qualifiedName() + " " + (a.isOption() ? ((CommandLine.Model.OptionSpec) a).longestName()
            : a.paramLabel()), a.description(), handBroken);
      }
    }
    assertThat(handBroken).as("description lines that do not end a sentence: join them into one paragraph")
        .isEmpty();
  }

  @Test
  void helpFitsEightyAndOneHundredTwentyColumns() {
    for (int width : new int[] {80, 120}) {
      CommandLine root = new CommandLine(new Vmd());
      root.setUsageHelpWidth(width);
      for (CommandLine c : all(root)) {
        for (String line : c.getUsageMessage(CommandLine.Help.Ansi.OFF).split("\n")) {
          assertThat(line.length()).as("%s at %d columns: %s", c.getCommandSpec().qualifiedName(), width, line)
              .isLessThanOrEqualTo(width);
        }
      }
    }
  }

  @Test
  void theReadmeShowsVmdHelpAsItIs() throws Exception {
    CommandLine root = new CommandLine(new Vmd());
    root.setUsageHelpWidth(80);
    String help = root.getUsageMessage(CommandLine.Help.Ansi.OFF).stripTrailing();
    String readme = Files.readString(Path.of("..", "README.md"));
    assertThat(readme).as("README.md's vmd --help (at 80 columns)").contains("```\n$ bin/vmd --help\n" + help + "\n```");
  }

  /** A line that does not end a sentence, or is followed by one that starts mid-sentence, was broken by hand. */
  private static void check(String where, String[] description, List<String> handBroken) {
    for (int i = 0; i < description.length; i++) {
      String t = description[i].strip().replaceAll("%n$", ""); // picocli's own help command ends so
      boolean continued = i + 1 < description.length && description[i + 1].strip().matches("^[a-z].*");
      if (!t.isEmpty() && (!t.matches("(?s).*[.:!?)]$") || continued)) {
        handBroken.add(where + ": \"" + t + "\"");
      }
    }
  }

  private static List<CommandLine> all(CommandLine c) {
    List<CommandLine> out = new ArrayList<>(List.of(c));
    for (CommandLine sub : c.getSubcommands().values()) {
      if (!out.contains(sub)) {
        out.addAll(all(sub));
      }
    }
    return out;
  }
}
