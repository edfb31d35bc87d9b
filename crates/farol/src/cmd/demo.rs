//! `farol demo`: a synthetic country in a farol directory of its own, built by running farol's
//! own commands on generated feed files, then served.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use farol_model::Timestamp;
use farol_synth::Rng;
use farol_synth::country::{COUNTRIES, Plan, Simulation};

use crate::config::FILE_NAME;

#[derive(Debug, clap::Args)]
#[command(after_help = "The workspace is an ordinary farol directory: afterwards every other command works in \
it (farol -d farol-demo stats, farol -d farol-demo report). Running farol demo again serves the existing \
workspace; remove the directory to build it anew.

Everything is synthetic but the networks: Portugal's real ASes and address ranges (data/ipdata-sample, \
CC BY 4.0: RouteViews, DB-IP and the NRO via the ip-location-db project). Organizations and their \
prefixes are invented.")]
pub struct Args {
    /// The workspace
    #[arg(long, default_value = "farol-demo")]
    dir: PathBuf,
    /// Address and port of the portal
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The same seed builds the same country (for the same --until)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many days of feeds
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(14..=1000))]
    days: u32,
    /// The last day (default: yesterday, UTC)
    #[arg(long, value_parser = |s: &str| farol_stats::parse_day(s).ok_or_else(|| format!("expected a date such as 2024-06-30, found {s:?}")))]
    until: Option<i64>,
    /// Build the workspace and stop, without serving
    #[arg(long)]
    no_serve: bool,
}

/// The demo's accounts: (e-mail, organization, role). Passwords come from the seed.
const USERS: [(&str, Option<&str>, &str); 4] = [
    ("admin@cert.demo", None, "admin"),
    ("analyst@cert.demo", None, "analyst"),
    ("soc@meo.demo", Some("MEO"), "org-admin"),
    ("it@hospital-braga.demo", Some("Hospital Distrital de Braga"), "org-member"),
];

pub fn run(args: Args) -> Result<()> {
    let dir = &args.dir;
    let started = Instant::now();
    if dir.join(FILE_NAME).exists() {
        println!("{} already holds a demo: serving it (remove the directory to build it anew)", dir.display());
    } else {
        build(&args)?;
        println!("\nbuilt in {:.1} s", started.elapsed().as_secs_f64());
    }
    println!("\nAccounts (synthetic; for this demo only):");
    for (email, org, role) in USERS {
        println!(
            "  {email:<24} {:<28} {role:<11} password: {}",
            org.unwrap_or("CERT Demo"),
            password(args.seed, email)
        );
    }
    println!(
        "\nTry: farol -d {d} stats   farol -d {d} stats --top asn   farol -d {d} report --out report.html",
        d = dir.display()
    );
    if args.no_serve {
        return Ok(());
    }
    println!("\nThe portal: http://{} (Ctrl-C stops it)", args.listen);
    super::serve::run(dir, super::serve::Args::listening(args.listen))
}

/// A user's password: four words from the seed and the address.
fn password(seed: u64, email: &str) -> String {
    const WORDS: &[&str] = &[
        "farol", "mar", "onda", "vento", "praia", "rocha", "luz", "barco", "porto", "serra", "rio", "sol", "areia",
        "nuvem", "ilha", "cabo",
    ];
    let mut h = seed;
    for b in email.bytes() {
        h = h.rotate_left(5) ^ u64::from(b);
    }
    let mut rng = Rng::new(h);
    (0..4).map(|_| *rng.pick(WORDS)).collect::<Vec<_>>().join("-")
}

/// Runs farol itself on the workspace, as a user would.
pub(super) fn farol(dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let exe = std::env::current_exe().context("cannot find the farol binary")?;
    let mut child = Command::new(exe)
        .arg("--quiet")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run farol")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("farol {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `farol init DIR --center CENTER --country PT`.
pub(super) fn farol_init(dir: &Path, center: &str) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the farol binary")?;
    let init =
        Command::new(exe).arg("--quiet").arg("init").arg(dir).args(["--center", center, "--country", "PT"]).output()?;
    if !init.status.success() {
        bail!("farol init failed: {}", String::from_utf8_lossy(&init.stderr).trim());
    }
    Ok(())
}

fn step(what: &str) {
    println!("• {what}");
}

fn build(args: &Args) -> Result<()> {
    let dir = &args.dir;
    let until = args.until.unwrap_or_else(|| Timestamp::now().day() - 1);
    let plan = Plan::over(args.days);
    let first = until - i64::from(plan.days) + 1;
    let day = |i: u32| first + i64::from(i);
    let files = dir.join("demo");
    std::fs::create_dir_all(&files).with_context(|| format!("cannot create {}", files.display()))?;

    step("a farol directory for CERT Demo, national scope PT");
    farol_init(dir, "CERT Demo")?;
    let config = dir.join(FILE_NAME);
    let text = std::fs::read_to_string(&config)?;
    let marks = format!(
        "peers = [\"ES\", \"FR\"]\nmarks = [\n  {{ date = \"{}\", label = \"national clean-up campaign\" }},\n  {{ date = \"{}\", label = \"Mozi outbreak\" }},\n]\n",
        farol_stats::date(day(plan.intervention)),
        farol_stats::date(day(plan.outbreak))
    );
    std::fs::write(&config, text.replacen("peers = []\n", &marks, 1))?;
    for (name, body) in FEEDS {
        std::fs::write(dir.join("feeds.d").join(format!("{name}.toml")), body)?;
    }

    step("IP data: Portugal's ASes and six countries' ranges (real, CC BY 4.0)");
    for (name, bytes) in [
        ("asn-ipv4-pt.csv", include_str!("../../../../data/ipdata-sample/asn-ipv4-pt.csv")),
        ("country-ipv4.csv", include_str!("../../../../data/ipdata-sample/country-ipv4.csv")),
    ] {
        let path = files.join(name);
        std::fs::write(&path, bytes)?;
        farol(dir, &["ipdata", "load", path.to_str().unwrap_or_default()], None)?;
    }

    let orgs = organizations();
    step(&format!(
        "{} organizations: ISPs (real ASes), government, critical sectors, universities, companies",
        orgs.len()
    ));
    let path = files.join("orgs.csv");
    let mut csv = String::from("name,sector,asns,prefixes,domains,abuse_email,language,interval,format\n");
    for o in &orgs {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},daily,csv\n",
            o.name,
            o.sector,
            o.asns,
            o.prefix.map_or(String::new(), |(a, len)| format!("{a}/{len}")),
            o.domain,
            o.email,
            if o.sector == "international-partner" { "en" } else { "pt" }
        ));
    }
    std::fs::write(&path, csv)?;
    farol(dir, &["org", "import", path.to_str().unwrap_or_default()], None)?;

    step("population: internet users per country (rounded public figures)");
    let path = files.join("population.csv");
    let mut csv = String::from("scope,key,metric,value,valid_from\n");
    for c in COUNTRIES {
        csv.push_str(&format!("country,{},internet-users,{},{}\n", c.cc, c.users, farol_stats::date(first)));
    }
    std::fs::write(&path, csv)?;
    farol(dir, &["population", "load", path.to_str().unwrap_or_default()], None)?;

    step(&format!(
        "{} days of feed files, {} to {}: CTIP, Shadowserver event4_sinkhole, URLhaus, Feodo Tracker",
        plan.days,
        farol_stats::date(first),
        farol_stats::date(until)
    ));
    let hot: Vec<(u32, u32, Option<u32>)> = orgs
        .iter()
        .filter_map(|o| o.prefix)
        .map(|(a, len)| (u32::from(a), u32::from(a) + (1u32 << (32 - len)) - 1, None))
        .collect();
    let mut sim = Simulation::new(args.seed, plan, hot, 0.2);
    let mut rng = Rng::new(args.seed ^ 0xD3A0);
    let mut written: Vec<(&str, Vec<PathBuf>)> = FEEDS.iter().map(|(name, _)| (*name, Vec::new())).collect();
    for i in 0..plan.days {
        let d = day(i);
        let date = farol_stats::date(d);
        let start = Timestamp::from_secs(d * 86_400).unwrap_or_else(Timestamp::now);
        let weekday = (d + 3).rem_euclid(7) as u32;
        let sightings = sim.day(i, weekday);
        let mut ctip = Vec::new();
        let mut sinkhole = Vec::from(format!("{}\n", farol_synth::SINKHOLE_HEADER));
        for s in &sightings {
            let t = start.add_secs(i64::from(s.second)).unwrap_or(start);
            farol_synth::ctip_line(&mut ctip, t, s, &mut rng)?;
            // Shadowserver's sinkholes see about half of Portugal's infected hosts too.
            if s.cc == "PT" && rng.below(2) == 0 {
                let mut host = Rng::new(u64::from(u32::from(s.ip)));
                farol_synth::sinkhole_line(&mut sinkhole, t, s, &mut host, &mut rng)?;
            }
        }
        let urlhaus = farol_synth::urlhaus_csv(start, 4 + rng.below(10), &mut rng);
        let feodo = farol_synth::feodo_csv(start, 3 + rng.below(5), &mut rng);
        for (k, (name, bytes)) in [
            (format!("{date}-ctip-infected.json.gz"), gzip(&ctip)?),
            (format!("{date}-event4_sinkhole-pt.csv.gz"), gzip(&sinkhole)?),
            (format!("{date}-urlhaus.csv"), urlhaus),
            (format!("{date}-feodo-ipblocklist.csv"), feodo),
        ]
        .into_iter()
        .enumerate()
        {
            let sub = files.join("feeds").join(written[k].0);
            std::fs::create_dir_all(&sub)?;
            let path = sub.join(name);
            std::fs::write(&path, bytes)?;
            written[k].1.push(path);
        }
    }

    for (feed, paths) in &written {
        step(&format!("farol ingest --feed {feed} ({} files)", paths.len()));
        let mut cmd: Vec<&str> = vec!["ingest", "--feed", feed];
        cmd.extend(paths.iter().filter_map(|p| p.to_str()));
        farol(dir, &cmd, None)?;
    }

    step("accounts");
    for (email, org, role) in USERS {
        let mut cmd = vec!["user", "add", email, "--role", role, "--password-stdin"];
        if let Some(org) = org {
            cmd.extend(["--org", org]);
        }
        farol(dir, &cmd, Some(&password(args.seed, email)))?;
    }

    step("a sharing community of the hospitals");
    let mut community = vec!["community", "add", "health-isac", "--description", "Hospitals and health services"];
    for o in orgs.iter().filter(|o| o.sector == "health") {
        community.extend(["--member", o.name.as_str()]);
    }
    farol(dir, &community, None)?;

    step("incidents, as analysts would have opened them, and messages to the organizations");
    let first_of = |sector: &str| orgs.iter().find(|o| o.sector == sector).map(|o| o.name.as_str()).unwrap_or("MEO");
    // (title, class, severity, organizations, status after opening)
    type Opened<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], Option<&'a str>);
    let incidents: [Opened; 4] = [
        ("Mozi botnet outbreak in home routers", "infected-system", "high", &["MEO", "NOS", "Vodafone Portugal"], None),
        (
            "Infected workstations at Hospital Distrital de Braga",
            "infected-system",
            "critical",
            &["Hospital Distrital de Braga"],
            Some("open"),
        ),
        (
            "Emotet C2 server in a Portuguese data centre",
            "c2-server",
            "high",
            &[first_of("digital-infrastructure")],
            Some("stalled"),
        ),
        ("Phishing site imitating a bank", "phishing", "medium", &[first_of("banking")], Some("resolved")),
    ];
    for (title, class, severity, orgs, status) in incidents {
        let mut cmd =
            vec!["incident", "new", title, "--class", class, "--severity", severity, "--assign", "analyst@cert.demo"];
        for o in orgs {
            cmd.extend(["--org", o]);
        }
        let opened = farol(dir, &cmd, None)?;
        // "incident 3 opened ...": the first number is its id.
        let id = opened.split(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty()).unwrap_or("1").to_owned();
        if let Some(status) = status {
            farol(dir, &["incident", "set", &id, "--status", status, "--note", "demo"], None)?;
        }
        if class == "infected-system" {
            // Queued in the outbox (no SMTP server is configured): the portal's Notifications page.
            let text = "Machines in your networks are seen at botnet sinkholes; the portal lists them under Events. Please clean them and tell us when it is done.";
            farol(dir, &["incident", "write", &id, text], None)?;
        }
    }
    Ok(())
}

/// Compressed as the large feeds arrive (farol undoes gzip), quickly.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut z = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 8), flate2::Compression::fast());
    z.write_all(bytes)?;
    Ok(z.finish()?)
}

/// The feeds of the demo, as feeds.d/ files.
const FEEDS: [(&str, &str); 4] = [
    (
        "microsoft-ctip",
        "# Synthetic: Microsoft's Cyber Threat Intelligence Program, infected hosts at its sinkholes.\nprovider = \"Microsoft DCU\"\nformat = \"ctip\"\ntlp = \"AMBER\"\n",
    ),
    (
        "shadowserver-sinkhole",
        "# Synthetic: Shadowserver's event4_sinkhole report for Portugal.\nprovider = \"Shadowserver\"\nformat = \"shadowserver\"\ntlp = \"AMBER\"\n",
    ),
    (
        "urlhaus",
        "# Synthetic: abuse.ch URLhaus, malware URLs (public: shared with every constituent).\nprovider = \"abuse.ch\"\nformat = \"urlhaus\"\ntlp = \"CLEAR\"\ndistribution = \"constituents\"\n",
    ),
    (
        "feodo",
        "# Synthetic: abuse.ch Feodo Tracker, botnet C2 servers (public: shared with every constituent).\nprovider = \"abuse.ch\"\nformat = \"feodo\"\ntlp = \"CLEAR\"\ndistribution = \"constituents\"\n",
    ),
];

/// An organization of the demo.
#[derive(Debug, Clone)]
struct DemoOrg {
    name: String,
    sector: &'static str,
    asns: String,
    prefix: Option<(Ipv4Addr, u8)>,
    domain: String,
    email: String,
}

const CITIES: &[&str] = &[
    "Lisboa",
    "Porto",
    "Braga",
    "Coimbra",
    "Aveiro",
    "Faro",
    "Évora",
    "Setúbal",
    "Viseu",
    "Leiria",
    "Guarda",
    "Bragança",
    "Viana do Castelo",
    "Vila Real",
    "Castelo Branco",
    "Portalegre",
    "Beja",
    "Santarém",
    "Funchal",
    "Ponta Delgada",
    "Guimarães",
    "Matosinhos",
    "Almada",
    "Sintra",
    "Cascais",
    "Amadora",
    "Oeiras",
    "Loures",
    "Odivelas",
    "Gaia",
    "Gondomar",
    "Maia",
    "Seixal",
    "Barreiro",
    "Torres Vedras",
    "Covilhã",
    "Figueira da Foz",
    "Tomar",
    "Lagos",
    "Portimão",
];

const NAMES: &[&str] = &[
    "Tejo",
    "Douro",
    "Minho",
    "Mondego",
    "Sado",
    "Guadiana",
    "Vouga",
    "Cávado",
    "Tâmega",
    "Zêzere",
    "Lima",
    "Atlântico",
    "Estrela",
    "Marão",
    "Arrábida",
    "Sintra",
    "Gerês",
    "Alvão",
    "Lousã",
    "Caramulo",
];

fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.to_lowercase().chars() {
        let c = match c {
            'á' | 'à' | 'â' | 'ã' => 'a',
            'é' | 'ê' => 'e',
            'í' => 'i',
            'ó' | 'ô' | 'õ' => 'o',
            'ú' => 'u',
            'ç' => 'c',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_owned()
}

/// Over 200 organizations: the real ISPs with their ASes, and invented ones, each with a
/// prefix carved from an ISP's real ranges (universities from the academic network's).
fn organizations() -> Vec<DemoOrg> {
    let nets = farol_synth::Networks::portugal();
    // Consecutive blocks from the ranges of one AS.
    let mut next: std::collections::HashMap<u32, (usize, u32)> = std::collections::HashMap::new();
    let mut carve = |asn: u32, len: u8| -> Option<(Ipv4Addr, u8)> {
        let size = 1u32 << (32 - len);
        let ranges: Vec<&farol_synth::Network> = nets.all().iter().filter(|n| n.asn == asn).collect();
        let (i, at) = next.entry(asn).or_insert((0, 0));
        while let Some(r) = ranges.get(*i) {
            let start = r.first.max(*at).div_ceil(size) * size;
            if start.checked_add(size - 1).is_some_and(|end| end <= r.last) {
                *at = start + size;
                return Some((Ipv4Addr::from(start), len));
            }
            *i += 1;
            *at = 0;
        }
        None
    };
    let mut orgs = Vec::new();
    let mut add = |name: String, sector: &'static str, asns: &str, prefix: Option<(Ipv4Addr, u8)>| {
        let s = slug(&name);
        orgs.push(DemoOrg {
            email: format!("abuse@{s}.demo"),
            domain: format!("{s}.demo"),
            name,
            sector,
            asns: asns.into(),
            prefix,
        });
    };
    for (name, asns) in [
        ("MEO", "3243 15525 42863 8657"),
        ("NOS", "2860 1897 15457"),
        ("Vodafone Portugal", "12353"),
        ("NOWO", "13156"),
        ("ONI", "5626"),
        ("Claranet Portugal", "5533"),
        ("RCTS (FCCN)", "1930"),
    ] {
        add(name.into(), "isp", asns, None);
    }
    let isps = [3243u32, 2860, 12353, 15525, 5533];
    let mut k = 0usize;
    let mut isp = || {
        k += 1;
        isps[k % isps.len()]
    };
    for m in [
        "das Finanças",
        "da Saúde",
        "da Educação",
        "da Justiça",
        "da Administração Interna",
        "da Defesa Nacional",
        "dos Negócios Estrangeiros",
        "da Economia",
        "do Trabalho",
        "da Agricultura",
        "do Ambiente",
        "da Cultura",
        "das Infraestruturas",
        "da Ciência",
        "da Coesão Territorial",
        "da Presidência",
    ] {
        add(format!("Ministério {m}"), "government", "", carve(isp(), 24));
    }
    for city in CITIES {
        add(format!("Câmara Municipal de {city}"), "public-administration", "", carve(isp(), 25));
    }
    for city in &CITIES[..30] {
        add(format!("Hospital Distrital de {city}"), "health", "", carve(isp(), 25));
    }
    for city in &CITIES[..8] {
        add(format!("Universidade de {city}"), "academic", "", carve(1930, 21));
    }
    for city in &CITIES[8..16] {
        add(format!("Instituto Politécnico de {city}"), "academic", "", carve(1930, 22));
    }
    for (i, field) in ["Oceanografia", "Biomedicina", "Materiais", "Informática"].iter().enumerate() {
        add(format!("Instituto de {field} {}", NAMES[i]), "research", "", carve(1930, 23));
    }
    let companies: [(&str, &str, usize); 15] = [
        ("energy", "Energia {} S.A.", 6),
        ("transport", "Transportes {} S.A.", 6),
        ("banking", "Banco {} S.A.", 8),
        ("financial-market", "Bolsa {}", 2),
        ("drinking-water", "Águas do {}", 5),
        ("waste-water", "Saneamento {}", 3),
        ("digital-infrastructure", "{} Datacenter", 5),
        ("ict-services", "{} Sistemas de Informação", 8),
        ("postal", "Correios {}", 1),
        ("waste-management", "Resíduos {}", 3),
        ("chemicals", "Química {}", 3),
        ("food", "Alimentar {} Lda", 6),
        ("manufacturing", "Indústrias {} S.A.", 10),
        ("digital-providers", "Mercado {} Online", 3),
        ("private", "{} Comércio Lda", 30),
    ];
    let mut n = 0usize;
    for (sector, pattern, count) in companies {
        for _ in 0..count {
            let base = NAMES[n % NAMES.len()];
            let name = if n >= NAMES.len() { format!("{base} {}", CITIES[n % CITIES.len()]) } else { base.to_owned() };
            add(pattern.replace("{}", &name), sector, "", carve(isp(), 26));
            n += 1;
        }
    }
    orgs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizations_are_many_distinct_and_own_disjoint_prefixes() {
        let orgs = organizations();
        assert!(orgs.len() >= 200, "{}", orgs.len());
        let mut names: Vec<&str> = orgs.iter().map(|o| o.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), orgs.len(), "names are unique");
        let mut blocks: Vec<(u32, u32)> = orgs
            .iter()
            .filter_map(|o| o.prefix)
            .map(|(a, len)| (u32::from(a), u32::from(a) + (1u32 << (32 - len)) - 1))
            .collect();
        blocks.sort_unstable();
        assert!(blocks.windows(2).all(|w| w[0].1 < w[1].0), "prefixes overlap");
        assert_eq!(
            orgs.iter().filter(|o| o.prefix.is_none() && o.asns.is_empty()).count(),
            0,
            "every org has a network"
        );
        assert_eq!(password(1, "a@b"), password(1, "a@b"));
        assert_ne!(password(1, "a@b"), password(2, "a@b"));
    }
}
