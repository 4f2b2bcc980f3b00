use break_glass_core::config::{self, ConfigError, Env};

/// hold-access's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The grant ledger's DynamoDB table (`GRANT_LEDGER_TABLE`).
    pub ledger_table: String,
    /// `HOLD_TIME_SCALE` (default 1): how much faster than real time the
    /// hold runs, counted from the grant. For break-glass-local, whose waits
    /// run that much faster; Terraform leaves it unset. It can only end
    /// holds sooner, never later.
    pub time_scale: f64,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let time_scale = config::parsed::<f64>(env, "HOLD_TIME_SCALE")?.unwrap_or(1.0);
        if !(1.0..=1_000_000.0).contains(&time_scale) {
            return Err(ConfigError::Invalid {
                var: "HOLD_TIME_SCALE",
                reason: "1 (real time) or more".into(),
            });
        }
        Ok(Self {
            ledger_table: config::required(env, "GRANT_LEDGER_TABLE")?,
            time_scale,
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
        assert_eq!(config.time_scale, 1.0);
        for bad in ["0.5", "fast", "-1"] {
            let err = Config::from_env(&map_env([("GRANT_LEDGER_TABLE", "t"), ("HOLD_TIME_SCALE", bad)]))
                .unwrap_err();
            assert!(err.to_string().contains("HOLD_TIME_SCALE"), "{err}");
        }
    }
}
