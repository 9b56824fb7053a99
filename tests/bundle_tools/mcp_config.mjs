// Prints the command an MCPB host runs for an unpacked bundle, computed by mcpb's own
// getMcpConfigForManifest (the code Claude Desktop uses to substitute ${__dirname}, the system folders
// and ${user_config.*}, defaults first, then the user's settings).
// Usage: node mcp_config.mjs <unpacked bundle dir> <user config JSON> <home dir>
import { readFileSync } from "node:fs";
import { join, sep } from "node:path";
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";

const [bundleDir, userConfigJson, home] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(join(bundleDir, "manifest.json"), "utf8"));
const config = await getMcpConfigForManifest({
  manifest,
  extensionPath: bundleDir,
  systemDirs: {
    HOME: home,
    DESKTOP: join(home, "Desktop"),
    DOCUMENTS: join(home, "Documents"),
    DOWNLOADS: join(home, "Downloads"),
  },
  userConfig: JSON.parse(userConfigJson),
  pathSeparator: sep,
  logger: console,
});
if (!config) {
  console.error("getMcpConfigForManifest gave no configuration (a required setting is missing?)");
  process.exit(1);
}
process.stdout.write(JSON.stringify(config));
