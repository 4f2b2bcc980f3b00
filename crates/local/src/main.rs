//! `break-glass-local`: the product on one machine.
//!
//!   break-glass-local demo  --moto URL [--time-scale N] [--listen ADDR] [--drill abort|slack] [--lambda-binaries DIR]
//!   break-glass-local serve [--listen 127.0.0.1:8787] [--time-scale N] [--definition FILE] [--lambda-binaries DIR]
//!   break-glass-local cold-start --lambda-binaries DIR [--runs N]
//!   break-glass-local doctor [--outputs FILE|-] [--definition FILE]
//!
//! `serve` reads the same environment variables as the Lambdas (AWS
//! endpoints through AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_CLOUDTRAIL). When
//! DynamoDB's endpoint is overridden (a stand-in such as moto), it creates
//! the GRANT_LEDGER_TABLE table there if it is missing; in AWS, Terraform
//! does. Both run reconcile-access every 10 minutes of their (scaled)
//! time and whenever a local execution ends ABORTED or FAILED;
//! `POST /executions/{name}/stop` aborts an execution by hand.
//!
//! `doctor` checks a deployment without granting anything, with the AWS
//! credentials at hand: from `terraform output -json` (`--outputs -` reads
//! it from stdin) or, without `--outputs`, from the functions' variables.
//! One line per check, `ok` or `PROBLEM` with what to fix; it exits 1 when
//! there is a problem.

use std::process::ExitCode;
use std::sync::Arc;

use break_glass_adapters::alerts::Sns;
use break_glass_adapters::audit::CloudTrailLookup;
use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_adapters::mailer::Ses;
use break_glass_adapters::session_policy::IamSessionPolicy;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_adapters::{in_region, sdk_config, secrets};
use break_glass_core::clock::{Clock, SystemClock};
use break_glass_core::config::ProcessEnv;
use break_glass_core::ports::{Alerts, IdentityCenter, SessionPolicy};
use break_glass_core::slack::SigningSecret;
use break_glass_local::asl::Definition;
use break_glass_local::binaries::LambdaBinaries;
use break_glass_local::demo::{self, Drill};
use break_glass_local::doctor;
use break_glass_local::reconciler::{self, Reconciler};
use break_glass_local::runner::{Functions, LocalStateMachine, PLACEHOLDERS, render};
use break_glass_local::server::{Answerer, Endpoint, InProcessControl, InProcessRules, router};

const DEFAULT_DEFINITION: &str = include_str!("../../../statemachine/break-glass.asl.json");

struct Args {
    command: String,
    listen: String,
    time_scale: f64,
    moto: Option<String>,
    definition: String,
    lambda_binaries: Option<std::path::PathBuf>,
    runs: Option<usize>,
    drill: Drill,
    outputs: Option<String>,
    definition_given: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let command = args
        .next()
        .ok_or("usage: break-glass-local (serve|demo|cold-start|doctor) [options]")?;
    let mut parsed = Args {
        command,
        listen: "127.0.0.1:8787".into(),
        time_scale: 1.0,
        moto: None,
        definition: DEFAULT_DEFINITION.into(),
        lambda_binaries: None,
        runs: None,
        drill: Drill::None,
        outputs: None,
        definition_given: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => parsed.listen = value()?,
            "--time-scale" => {
                parsed.time_scale = value()?
                    .parse()
                    .map_err(|_| "--time-scale takes a number".to_string())?;
                if parsed.time_scale <= 0.0 {
                    return Err("--time-scale must be positive".into());
                }
            }
            "--moto" => parsed.moto = Some(value()?),
            "--drill" => {
                parsed.drill = match value()?.as_str() {
                    "abort" => Drill::Abort,
                    "revoke-fails" => Drill::RevokeFails,
                    "unknown-user" => Drill::UnknownUser,
                    "slack" => Drill::Slack,
                    other => {
                        return Err(format!(
                            "unknown drill {other}: abort, revoke-fails, unknown-user or slack"
                        ));
                    }
                }
            }
            "--lambda-binaries" => parsed.lambda_binaries = Some(value()?.into()),
            "--runs" => {
                parsed.runs = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--runs takes a number".to_string())?,
                )
            }
            "--definition" => {
                let path = value()?;
                parsed.definition = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                parsed.definition_given = true;
            }
            "--outputs" => {
                let path = value()?;
                parsed.outputs = Some(if path == "-" {
                    std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))?
                } else {
                    std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?
                });
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match parse() {
        Ok(args) if args.command == "demo" => run_demo(args).await,
        Ok(args) if args.command == "serve" => serve(args).await,
        Ok(args) if args.command == "cold-start" => cold_start(args).await,
        Ok(args) if args.command == "doctor" => doctor(args).await,
        Ok(args) => Err(format!(
            "unknown command {}: use serve, demo, cold-start or doctor",
            args.command
        )),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("break-glass-local: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `doctor [--outputs FILE|-] [--definition FILE]`: one line per check;
/// an error when any check found a problem.
async fn doctor(args: Args) -> Result<(), String> {
    let source = match args.outputs {
        Some(json) => doctor::Source::Outputs(json),
        None => doctor::Source::Environment,
    };
    let settings = doctor::settings(&source, &ProcessEnv)?;
    let mut options = doctor::Options::default();
    if args.definition_given {
        options.definition = args.definition;
    }
    let policy = doctor::policy_settings(&source, &ProcessEnv, &settings)?;
    let sdk = sdk_config().await;
    let mut findings = doctor::run(&settings, &sdk, &options).await;
    findings.extend(doctor::run_policy(&settings, &policy, &sdk, &options).await);
    for finding in &findings {
        println!("{finding}");
    }
    match findings.iter().filter(|f| !f.ok).count() {
        0 => Ok(()),
        1 => Err("1 problem".into()),
        n => Err(format!("{n} problems")),
    }
}

/// `cold-start --lambda-binaries DIR [--runs N]`: DIR/access-requested's
/// cold start, N times.
async fn cold_start(args: Args) -> Result<(), String> {
    let dir = args
        .lambda_binaries
        .ok_or("cold-start needs --lambda-binaries DIR")?;
    let runs = args.runs.unwrap_or(10);
    let mut answered = Vec::new();
    let mut rss = Vec::new();
    for run in 1..=runs {
        let m = break_glass_local::coldstart::measure(&dir.join("access-requested")).await?;
        println!(
            "run {run:>2}: ready for events after {:>6.1} ms, first click answered after {:>6.1} ms, peak RSS {:>6.1} MB",
            m.ready.as_secs_f64() * 1000.0,
            m.answered.as_secs_f64() * 1000.0,
            m.peak_rss_kib as f64 / 1024.0
        );
        answered.push(m.answered);
        rss.push(m.peak_rss_kib);
    }
    answered.sort();
    rss.sort_unstable();
    println!(
        "median over {runs}: first click answered after {:.1} ms, peak RSS {:.1} MB",
        answered[answered.len() / 2].as_secs_f64() * 1000.0,
        rss[rss.len() / 2] as f64 / 1024.0
    );
    Ok(())
}

async fn run_demo(args: Args) -> Result<(), String> {
    let moto = args
        .moto
        .ok_or("demo needs --moto URL (scripts/demo starts one)")?;
    let outcome = demo::run(demo::Options {
        moto_endpoint: moto,
        definition: args.definition,
        time_scale: if args.time_scale == 1.0 {
            600.0
        } else {
            args.time_scale
        },
        listen: if args.listen == "127.0.0.1:8787" {
            "127.0.0.1:0".into()
        } else {
            args.listen
        },
        drill: args.drill,
        function_region: None,
        policy_group: None,
        lambda_binaries: args.lambda_binaries,
        narrate: true,
        reconcile_every: Some(reconciler::EVERY),
    })
    .await?;
    let expected = match args.drill {
        Drill::None | Drill::Slack => "SUCCEEDED",
        Drill::Abort => "ABORTED",
        Drill::RevokeFails | Drill::UnknownUser => "FAILED",
    };
    if outcome.execution.status != expected {
        return Err(format!(
            "the execution ended {}, not {expected}",
            outcome.execution.status
        ));
    }
    Ok(())
}

async fn serve(args: Args) -> Result<(), String> {
    let definition = Definition::parse(&render(&args.definition, PLACEHOLDERS)).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", args.listen))?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    ledger_table_in_stand_in().await?;
    let (machine, answerer, reconciler) = match &args.lambda_binaries {
        Some(dir) => {
            // The binaries read the same environment, and reach Step
            // Functions through this process.
            let mut env: Vec<(String, String)> = std::env::vars().collect();
            env.push(("AWS_ENDPOINT_URL_SFN".into(), url.clone()));
            env.push((
                "STATE_MACHINE_ARN".into(),
                break_glass_local::sfn_api::STATE_MACHINE_ARN.into(),
            ));
            let binaries = Arc::new(LambdaBinaries::start(dir, &env).await?);
            let machine =
                LocalStateMachine::new(definition, binaries.clone(), clock.clone(), args.time_scale);
            let reconciler =
                Reconciler::binary(binaries.clone(), break_glass_local::sfn_api::STATE_MACHINE_ARN);
            (machine, Answerer::Binary(binaries), reconciler)
        }
        None => in_process(definition, clock.clone(), args.time_scale).await?,
    };
    reconciler.spawn(machine.clone(), Some(reconciler::EVERY));
    let app = router(Endpoint { machine, answerer });
    println!(
        "break-glass-local serving POST /slack/interactions, GET /executions and POST /executions/{{name}}/stop on {url} (time scale {}; reconcile-access every 10 scaled minutes and when an execution ends ABORTED or FAILED)",
        args.time_scale
    );
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// Creates the grant ledger's table when DynamoDB is a stand-in (its
/// endpoint overridden) and GRANT_LEDGER_TABLE names one; never in AWS.
async fn ledger_table_in_stand_in() -> Result<(), String> {
    let stand_in = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"]
        .iter()
        .any(|k| std::env::var_os(k).is_some());
    match std::env::var("GRANT_LEDGER_TABLE") {
        Ok(table) if stand_in => {
            break_glass_testkit::moto::create_ledger_table(&sdk_config().await, &table).await
        }
        _ => Ok(()),
    }
}

async fn in_process(
    definition: Definition,
    clock: Arc<dyn Clock>,
    time_scale: f64,
) -> Result<(Arc<LocalStateMachine>, Answerer, Arc<Reconciler>), String> {
    let e = |err: break_glass_core::config::ConfigError| err.to_string();
    let access = access_requested::Config::from_env(&ProcessEnv).map_err(e)?;
    let grant = grant_access::Config::from_env(&ProcessEnv).map_err(e)?;
    let revoke = revoke_access::Config::from_env(&ProcessEnv).map_err(e)?;
    let mut hold = hold_access::Config::from_env(&ProcessEnv).map_err(e)?;
    // The hold runs in this runner's scaled time.
    hold.time_scale = time_scale.max(1.0);
    let report = report_on_access::Config::from_env(&ProcessEnv).map_err(e)?;
    let reconcile = reconcile_access::Config::from_env(&ProcessEnv).map_err(e)?;
    let sdk = sdk_config().await;
    let secret = secrets::resolve_with(&sdk, &access.signing_secret)
        .await
        .map_err(|e| e.to_string())?;
    let token = secrets::resolve_with(&sdk, &grant.slack.bot_token)
        .await
        .map_err(|e| e.to_string())?;
    let slack = Arc::new(SlackWebApi::new(&grant.slack.api_url, Some(BotToken::new(token))));
    // Identity Center answers only in its home region (SSO_REGION).
    let sso_sdk = in_region(&sdk, grant.sso_region.as_deref());
    let sso: Arc<dyn IdentityCenter> = Arc::new(SsoAdmin::from_sdk(&sso_sdk, grant.instance.clone()));
    let alerts: Option<Arc<dyn Alerts>> = report
        .alert_topic_arn
        .as_ref()
        .map(|arn| Arc::new(Sns::from_sdk(&sdk, arn)) as Arc<dyn Alerts>);
    let session_policy = match &revoke.end_sessions {
        revoke_access::EndSessions::On {
            audit_role,
            policy_name,
        } => Some(Arc::new(IamSessionPolicy::new(&sdk, audit_role, policy_name)) as Arc<dyn SessionPolicy>),
        _ => None,
    };
    let functions = Functions {
        hold,
        grant_rules: break_glass_local::runner::grant_rules(&grant, &sdk),
        session_policy,
        directory: Arc::new(IdentityStore::from_sdk(&sso_sdk, &grant.identity_store_id)),
        ledger: Arc::new(DynamoLedger::from_sdk(&sdk, &grant.ledger_table)),
        trail: Arc::new(CloudTrailLookup::new(&sdk, report.audit_role_name.clone())),
        mailer: Arc::new(Ses::from_sdk(&sdk)),
        revoke_identity_center: sso.clone(),
        identity_center: sso,
        slack: slack.clone(),
        alerts,
        clock: clock.clone(),
        grant,
        revoke,
        report,
    };
    let reconciler = Reconciler::in_process(reconcile, &functions);
    let machine = LocalStateMachine::new(definition, Arc::new(functions), clock.clone(), time_scale);
    let answerer = Answerer::InProcess {
        rules: InProcessRules::wire(&access, &sdk, &sso_sdk),
        control: InProcessControl::wire(&access, &sdk, &sso_sdk),
        config: Arc::new(access),
        secret: Arc::new(SigningSecret::new(secret)),
        slack,
        clock,
    };
    Ok((machine, answerer, reconciler))
}
