//! The daemons' TOML config files, one per daemon (`--config FILE`, or `FUSION_CONFIG`). Every
//! field is optional and documented (unit, default) in `systemd/node.toml.example` and
//! `systemd/hub.toml.example`. Precedence: a flag, then its environment variable, then the file,
//! then the default. Secrets are never in the file: it names the files that hold them.
//! `fusion config check FILE` reports every problem as `FILE:LINE:COLUMN: message`.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<toml::Spanned<String>>,
    pub store_id: Option<toml::Spanned<String>>,
    #[serde(default)]
    pub sync: NodeSync,
    #[serde(default)]
    pub payments: Payments,
    #[serde(default)]
    pub orders: Orders,
    #[serde(default)]
    pub shipping: Shipping,
    /// The receipt printer: `HOST:PORT` or a device path (`--printer`).
    pub printer: Option<toml::Spanned<String>>,
    /// MiB of shared documents loaded at once (`--doc-cache-mb`).
    pub doc_cache_mb: Option<usize>,
    /// MiB of the store file's pages kept in memory (`--store-cache-mb`).
    pub store_cache_mb: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSync {
    pub hub: Option<toml::Spanned<String>>,
    #[serde(default)]
    pub peers: Vec<toml::Spanned<String>>,
    pub bind: Option<toml::Spanned<String>>,
    pub relay_url: Option<toml::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payments {
    pub stripe_url: Option<String>,
    pub stripe_key_file: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
    pub card_floor_limit: Option<toml::Spanned<String>>,
    pub offline_card_budget: Option<toml::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Orders {
    pub hold_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shipping {
    pub rates_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<toml::Spanned<String>>,
    pub sync_bind: Option<toml::Spanned<String>>,
    pub relay_url: Option<toml::Spanned<String>>,
    #[serde(default)]
    pub kafka: Kafka,
    /// `[[webhook]]` tables: the n8n bridge's subscriptions.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<Webhook>,
}

/// One webhook subscription (see `fusion_hub::webhook`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: toml::Spanned<String>,
    pub url: toml::Spanned<String>,
    pub topics: Vec<toml::Spanned<String>>,
    /// File holding the HMAC secret (under systemd: a credential).
    pub secret_file: toml::Spanned<String>,
    pub max_attempts: Option<u32>,
    pub backoff_initial_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub concurrency: Option<usize>,
}

impl Webhook {
    /// The subscription, its secret read from `secret_file` (trailing newline dropped).
    pub fn subscription(&self) -> anyhow::Result<fusion_hub::webhook::Subscription> {
        let path = self.secret_file.get_ref();
        let secret = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("webhook {}: secret_file {path}: {e}", self.name.get_ref()))?;
        let secret = secret.trim_end_matches(['\r', '\n']);
        if secret.is_empty() {
            return Err(anyhow!(
                "webhook {}: secret_file {path} is empty",
                self.name.get_ref()
            ));
        }
        let mut s = fusion_hub::webhook::Subscription::new(
            self.name.get_ref(),
            self.url.get_ref(),
            self.topics.iter().map(|t| t.get_ref().clone()).collect(),
            secret.as_bytes().to_vec(),
        );
        if let Some(n) = self.max_attempts {
            s.max_attempts = n;
        }
        if let Some(ms) = self.backoff_initial_ms {
            s.backoff_initial = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = self.backoff_max_ms {
            s.backoff_max = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = self.timeout_ms {
            s.timeout = std::time::Duration::from_millis(ms);
        }
        if let Some(n) = self.concurrency {
            s.concurrency = n;
        }
        Ok(s)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kafka {
    pub brokers: Option<String>,
    pub partitions: Option<i32>,
    pub retention_ms: Option<i64>,
    pub schema_registry_url: Option<String>,
}

/// One problem in a config file.
#[derive(Debug)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found in a config file.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.path, .problems))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

fn render(path: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}:{}:{}: {}", path.display(), p.line, p.column, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Line and column (1-based) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at(&mut self, span: Range<usize>, message: String) {
        let (line, column) = position(self.text, span.start);
        self.problems.push(Problem {
            line,
            column,
            message,
        });
    }

    /// Checks a spanned value with `parse`, recording its error at the value.
    fn check<T>(
        &mut self,
        field: &str,
        value: &Option<toml::Spanned<String>>,
        mut parse: impl FnMut(&str) -> Result<T, String>,
    ) {
        if let Some(v) = value
            && let Err(e) = parse(v.get_ref())
        {
            self.at(v.span(), format!("{field}: {e}"));
        }
    }
}

fn parse_file<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<(String, T)> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
    match toml::from_str::<T>(&text) {
        Ok(config) => Ok((text, config)),
        Err(e) => {
            let (line, column) = e.span().map_or((1, 1), |s| position(&text, s.start));
            Err(ConfigError {
                path: path.to_path_buf(),
                problems: vec![Problem {
                    line,
                    column,
                    message: e.message().to_string(),
                }],
            }
            .into())
        }
    }
}

fn addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|e| format!("{text:?} is not an IP:PORT address ({e})"))
}

fn url(text: &str) -> Result<(), String> {
    text.parse::<fusion_sync::net::RelayUrl>()
        .map(|_| ())
        .map_err(|e| format!("{text:?} is not a URL ({e})"))
}

/// Reads and checks a node config; every problem is reported, with its line.
pub fn load_node(path: &Path) -> anyhow::Result<NodeConfig> {
    let (text, config) = parse_file::<NodeConfig>(path)?;
    let mut c = Checker {
        text: &text,
        problems: Vec::new(),
    };
    c.check("listen", &config.listen, addr);
    c.check("store_id", &config.store_id, |s| {
        fusion_contracts::StoreId::new(s)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    c.check("sync.hub", &config.sync.hub, |s| {
        crate::parse::parse_peer(s).map(|_| ())
    });
    for peer in &config.sync.peers {
        c.check("sync.peers", &Some(peer.clone()), |s| {
            crate::parse::parse_peer(s).map(|_| ())
        });
    }
    c.check("sync.bind", &config.sync.bind, addr);
    c.check("sync.relay_url", &config.sync.relay_url, url);
    c.check("printer", &config.printer, |s| {
        s.parse::<fusion_node::printer::Printer>().map(|_| ())
    });
    c.check(
        "payments.card_floor_limit",
        &config.payments.card_floor_limit,
        |s| crate::parse::parse_money(s).map(|_| ()),
    );
    c.check(
        "payments.offline_card_budget",
        &config.payments.offline_card_budget,
        |s| crate::parse::parse_money(s).map(|_| ()),
    );
    finish(path, c, config)
}

/// Reads and checks a hub config.
pub fn load_hub(path: &Path) -> anyhow::Result<HubConfig> {
    let (text, config) = parse_file::<HubConfig>(path)?;
    let mut c = Checker {
        text: &text,
        problems: Vec::new(),
    };
    c.check("listen", &config.listen, addr);
    c.check("sync_bind", &config.sync_bind, addr);
    c.check("relay_url", &config.relay_url, url);
    let mut names = std::collections::BTreeSet::new();
    for w in &config.webhooks {
        let name = Some(w.name.clone());
        c.check("webhook.name", &name, |n| match n.trim() {
            "" => Err("must not be empty".into()),
            n if !names.insert(n.to_string()) => Err(format!("{n:?} is used twice")),
            _ => Ok(()),
        });
        c.check(
            "webhook.url",
            &Some(w.url.clone()),
            |u| match reqwest::Url::parse(u) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
                _ => Err(format!("{u:?} is not an http:// or https:// URL")),
            },
        );
        if w.topics.is_empty() {
            c.at(
                w.name.span(),
                "webhook.topics: name at least one topic (or \"*\")".into(),
            );
        }
        for topic in &w.topics {
            c.check("webhook.topics", &Some(topic.clone()), topic_filter);
        }
        c.check("webhook.secret_file", &Some(w.secret_file.clone()), |f| {
            if Path::new(f).is_absolute() {
                Ok(())
            } else {
                Err(format!("{f:?} must be an absolute path"))
            }
        });
        if w.max_attempts == Some(0) {
            c.at(
                w.name.span(),
                "webhook.max_attempts: must be at least 1".into(),
            );
        }
    }
    finish(path, c, config)
}

/// A webhook topic filter: a topic, `prefix.*` matching one, or `*`.
fn topic_filter(filter: &str) -> Result<(), String> {
    let topics = fusion_hub::export::topics();
    let known = match filter.strip_suffix('*') {
        Some(prefix) => topics.iter().any(|t| t.starts_with(prefix)),
        None => topics.contains(&filter),
    };
    if known {
        Ok(())
    } else {
        Err(format!("{filter:?} matches no topic of this system"))
    }
}

fn finish<T>(path: &Path, mut checker: Checker<'_>, config: T) -> anyhow::Result<T> {
    checker.problems.sort_by_key(|p| (p.line, p.column));
    if checker.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError {
            path: path.to_path_buf(),
            problems: checker.problems,
        }
        .into())
    }
}

/// The value of a checked spanned field.
pub fn value<T: std::str::FromStr>(field: &Option<toml::Spanned<String>>) -> Option<T> {
    field.as_ref().and_then(|v| v.get_ref().parse().ok())
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    Node,
    Hub,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a config file: every problem as FILE:LINE:COLUMN: message; exit 1 if any.
    Check {
        file: PathBuf,
        /// Which daemon's file it is.
        #[arg(long, value_enum, default_value = "node")]
        kind: Kind,
    },
}

pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check { file, kind } => {
            match kind {
                Kind::Node => load_node(&file).map(|_| ())?,
                Kind::Hub => load_hub(&file).map(|_| ())?,
            }
            println!("{}: ok", file.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(kind: Kind, text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, text).unwrap();
        let result = match kind {
            Kind::Node => load_node(&path).map(|_| ()),
            Kind::Hub => load_hub(&path).map(|_| ()),
        };
        match result {
            Ok(()) => Vec::new(),
            Err(e) => e
                .downcast::<ConfigError>()
                .unwrap()
                .problems
                .iter()
                .map(|p| format!("{}:{} {}", p.line, p.column, p.message))
                .collect(),
        }
    }

    #[test]
    fn the_shipped_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
        assert!(
            problems(
                Kind::Node,
                &std::fs::read_to_string(dir.join("node.toml.example")).unwrap()
            )
            .is_empty()
        );
        assert!(
            problems(
                Kind::Hub,
                &std::fs::read_to_string(dir.join("hub.toml.example")).unwrap()
            )
            .is_empty()
        );
        let n8n = dir.join("../hub/n8n/hub-webhooks.toml");
        assert_eq!(
            problems(Kind::Hub, &std::fs::read_to_string(n8n).unwrap()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn problems_name_their_line_and_column() {
        let text = "listen = \"127.0.0.1:8080\"\nstore_id = \"a b\"\n\n[sync]\nbind = \"nowhere\"\npeers = [\"x\"]\n\n[payments]\ncard_floor_limit = \"10.005 USD\"\n";
        assert_eq!(
            problems(Kind::Node, text),
            [
                "2:12 store_id: storeId contains a character that is not allowed",
                "5:8 sync.bind: \"nowhere\" is not an IP:PORT address (invalid socket address syntax)",
                "6:10 sync.peers: expected ENDPOINT_ID@IP:PORT[,IP:PORT…]",
                "9:20 payments.card_floor_limit: amount has more decimals than USD allows (2)",
            ]
        );
        let unknown = problems(Kind::Node, "listen = \"127.0.0.1:1\"\n[orders]\nhold = 5\n");
        assert_eq!(unknown.len(), 1);
        assert!(
            unknown[0].starts_with("3:1 unknown field `hold`"),
            "{unknown:?}"
        );
        let hooks = "[[webhook]]\nname = \"a\"\nurl = \"ftp://x\"\ntopics = [\"payment.*\", \"orders.created\"]\nsecret_file = \"/s\"\n\n[[webhook]]\nname = \"a\"\nurl = \"http://n8n:5678/webhook/x\"\ntopics = [\"*\"]\nsecret_file = \"s\"\n";
        assert_eq!(
            problems(Kind::Hub, hooks),
            [
                "3:7 webhook.url: \"ftp://x\" is not an http:// or https:// URL",
                "4:24 webhook.topics: \"orders.created\" matches no topic of this system",
                "8:8 webhook.name: \"a\" is used twice",
                "11:15 webhook.secret_file: \"s\" must be an absolute path",
            ]
        );
        let wrong_type = problems(Kind::Hub, "sync_bind = 7070\n");
        assert!(
            wrong_type[0].starts_with("1:13 invalid type"),
            "{wrong_type:?}"
        );
    }
}
