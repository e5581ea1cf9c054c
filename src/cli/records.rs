//! `sim7k records`: push a JSONL report to a sink (store and forward), and the built-in views
//! of a report or a database.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::exit::Exit;
use crate::records::{self, View};

const RECORDS_AFTER_HELP: &str = "\
Sinks:
  postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=disable|prefer&timeout=5s]
  mqtt://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC/PREFIX[?timeout=5s&client_id=ID]
A password may be an environment reference, {{env.NAME}}; PostgreSQL also reads PGPASSWORD.

Examples:
  sim7k records push line.jsonl --to postgres://line@db.factory/records
  sim7k records push line.jsonl --to mqtt://broker.factory/factory/records
  sim7k records yield --file line.jsonl
  sim7k records failures --db postgres://line@db.factory/records --json";

/// `sim7k records …`
#[derive(Debug, Subcommand)]
#[command(after_help = RECORDS_AFTER_HELP)]
pub(super) enum RecordsCommand {
    /// Send each sink the records of a JSONL report it lacks (store and forward). Records
    /// already there are not sent again. Exit 0 when every sink has every record, 4 otherwise.
    Push(PushArgs),
    /// Yield per recipe and day (UTC): runs, passed, failed, devices, yield.
    Yield(ViewArgs),
    /// Failures by step: how many runs ended at each step, with the latest reason.
    Failures(ViewArgs),
    /// Devices by firmware revision.
    Firmware(ViewArgs),
    /// Print the SQL of the records schema (for a DBA to review or apply by hand).
    Schema,
}

/// Arguments of `sim7k records push`.
#[derive(Debug, Args)]
pub(super) struct PushArgs {
    /// The JSONL report (`sim7k run --report FILE.jsonl`).
    pub file: PathBuf,
    /// A sink URL (repeatable).
    #[arg(long = "to", value_name = "URL", required = true)]
    pub to: Vec<String>,
    /// Station name for records that do not carry one (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub station: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Where a view reads records.
#[derive(Debug, Args)]
pub(super) struct ViewArgs {
    /// A JSONL report.
    #[arg(
        long,
        value_name = "FILE.jsonl",
        required_unless_present = "db",
        conflicts_with = "db"
    )]
    pub file: Option<PathBuf>,
    /// A database the records were pushed to (postgres://…).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Print JSON (an array of rows) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run a `sim7k records` subcommand.
pub(super) fn run(cmd: &RecordsCommand) -> Exit {
    match cmd {
        RecordsCommand::Push(a) => push(a),
        RecordsCommand::Yield(a) => view(View::Yield, a),
        RecordsCommand::Failures(a) => view(View::Failures, a),
        RecordsCommand::Firmware(a) => view(View::Firmware, a),
        RecordsCommand::Schema => {
            print!("{}", records::pg::schema::full_sql());
            Exit::Success
        }
    }
}

fn push(a: &PushArgs) -> Exit {
    if !a.file.is_file() {
        eprintln!("error: {} is not a file", a.file.display());
        return Exit::Usage;
    }
    // Check every URL before sending anything.
    for u in &a.to {
        if let Err(e) = records::SinkUrl::parse(u) {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    }
    let station = a.station.clone().unwrap_or_else(records::default_station);
    let mut worst = Exit::Success;
    let mut summaries = Vec::new();
    for (i, u) in a.to.iter().enumerate() {
        let s = match records::push_file(&a.file, u, &station) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                worst = worst.max(Exit::Io);
                continue;
            }
        };
        if i == 0 {
            for (line, why) in &s.bad_lines {
                eprintln!(
                    "warning: {}:{line}: skipped, not a usable record: {why}",
                    a.file.display()
                );
            }
        }
        if !a.json {
            println!("{}", s.line());
        }
        for (id, why) in &s.rejected {
            eprintln!("error: {}: record {id} refused: {why}", s.sink);
        }
        if let Some(e) = &s.error {
            eprintln!("error: {}: {e}", s.sink);
        }
        if !s.complete() {
            worst = worst.max(Exit::Io);
        }
        summaries.push(s);
    }
    if a.json {
        match serde_json::to_string_pretty(&summaries) {
            Ok(t) => println!("{t}"),
            Err(e) => eprintln!("error: cannot encode the summary: {e}"),
        }
    }
    worst
}

fn view(which: View, a: &ViewArgs) -> Exit {
    let rows = match (&a.file, &a.db) {
        (Some(f), _) => match records::read_records(f) {
            Ok((recs, bad)) => {
                for (line, why) in bad {
                    eprintln!(
                        "warning: {}:{line}: skipped, not a usable record: {why}",
                        f.display()
                    );
                }
                records::views::from_records(which, &recs)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Io;
            }
        },
        (None, Some(url)) => match records::views::from_database(which, url) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Io;
            }
        },
        (None, None) => {
            eprintln!("error: give --file FILE.jsonl or --db postgres://…");
            return Exit::Usage;
        }
    };
    if a.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(t) => println!("{t}"),
            Err(e) => {
                eprintln!("error: cannot encode the rows: {e}");
                return Exit::Io;
            }
        }
    } else if rows.is_empty() {
        println!("no records");
    } else {
        print!("{}", rows.table());
    }
    Exit::Success
}
