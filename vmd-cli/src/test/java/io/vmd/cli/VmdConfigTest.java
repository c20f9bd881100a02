package io.vmd.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Which properties file gives options their defaults, and how its keys reach one command or all. */
class VmdConfigTest {
  @TempDir Path tmp;

  @Test
  void theEnvironmentWinsThenTheUsersThenTheSystemsFile() throws Exception {
    Path user = tmp.resolve("user.properties");
    Path system = tmp.resolve("system.properties");
    assertThat(Vmd.configFile(null, user, system)).isNull();
    Files.writeString(system, "meta=h1:7300\n");
    assertThat(Vmd.configFile(null, user, system)).isEqualTo(system);
    Files.writeString(user, "meta=h2:7300\n");
    assertThat(Vmd.configFile("", user, system)).isEqualTo(user);
    Path chosen = Files.writeString(tmp.resolve("chosen.properties"), "meta=h3:7300\n");
    assertThat(Vmd.configFile(chosen.toString(), user, system)).isEqualTo(chosen);
    assertThatThrownBy(() -> Vmd.configFile(tmp.resolve("missing").toString(), user, system))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("VMD_CONFIG=");
  }

  @Test
  void aKeyIsAnOptionForEveryCommandOrPrefixedForOne() {
    Properties p = new Properties();
    p.setProperty("meta", "h1:7300");
    p.setProperty("vmd.server.memory", "3G");
    p.setProperty("vmd.server.listen", "10.0.0.11:7400");
    p.setProperty("listen", "10.0.0.99:1");
    CommandLine cl = new CommandLine(new Vmd());
    cl.setDefaultValueProvider(new CommandLine.PropertiesDefaultProvider(p));
    // --memory is required, and the file satisfies it: the systemd unit's command line has none.
    CommandLine.ParseResult server = cl.parseArgs("server");
    ServerCommand s = (ServerCommand) server.subcommand().commandSpec().userObject();
    assertThat(s.memory).isEqualTo(3L << 30);
    assertThat(s.listen).isEqualTo("10.0.0.11:7400");
    // The command line wins over the file.
    CommandLine again = new CommandLine(new Vmd());
    again.setDefaultValueProvider(new CommandLine.PropertiesDefaultProvider(p));
    ServerCommand flagged = (ServerCommand) again.parseArgs("server", "--memory", "1G").subcommand().commandSpec()
        .userObject();
    assertThat(flagged.memory).isEqualTo(1L << 30);
    // A key without a prefix reaches every command that has the option.
    CommandLine gw = new CommandLine(new Vmd());
    gw.setDefaultValueProvider(new CommandLine.PropertiesDefaultProvider(p));
    GatewayCommand g = (GatewayCommand) gw.parseArgs("gateway").subcommand().commandSpec().userObject();
    assertThat(g.listen).isEqualTo("10.0.0.99:1");
  }
}
