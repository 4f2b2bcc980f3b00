use break_glass_core::config::{self, ConfigError, Env};

/// hold-access's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The grant ledger's DynamoDB table (`GRANT_LEDGER_TABLE`).
    pub ledger_table: String,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            ledger_table: config::required(env, "GRANT_LEDGER_TABLE")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use break_glass_core::config::map_env;

    #[test]
    fn the_ledger_table_is_required_and_named() {
        let err = Config::from_env(&map_env([])).unwrap_err();
        assert!(err.to_string().contains("GRANT_LEDGER_TABLE"), "{err}");
        let config = Config::from_env(&map_env([("GRANT_LEDGER_TABLE", "t")])).unwrap();
        assert_eq!(config.ledger_table, "t");
    }
}
