import { ConfigError, type LoadInput, loadSettings, type Settings } from "./load.js";

export {
  addOptionFlags,
  ConfigError,
  type KafkaSettings,
  type LimitSettings,
  loadSettings,
  type Settings,
} from "./load.js";
export {
  CONSUME_GROUPS,
  DEFAULT_KAFKA_CLIENT,
  envOf,
  flagOf,
  KAFKA_CLIENTS,
  type KafkaClient,
  type OnInvalid,
  OPTION_SPECS,
  type OptionSpec,
} from "./options.js";

/** For CLI actions: a bad setting ends the process with one line naming it and exit code 2. */
export function loadSettingsOrExit(flags: Record<string, unknown>, groups: LoadInput["groups"]): Settings {
  try {
    return loadSettings({ flags, env: process.env, groups });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`reluwatch: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
