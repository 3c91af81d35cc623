//! `onvm top`: a terminal view of a running manager, over its HTTP endpoint's live
//! stream (`/api/v1/stream`, one stats document a second): ports, NFs, services and
//! drops with their rates, redrawn as each document comes.
//!
//! A reader thread follows the stream and hands each document to the UI thread, which
//! draws with ratatui and reads keys: `q` or Esc quits, `s` changes the NF sort
//! (rx rate, tx rate, tag), `p` pauses.

use std::io::BufRead as _;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use serde_json::Value;

use crate::CliResult;

/// `onvm top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// The manager's HTTP endpoint (`onvm mgr --http`): a URL, ADDR:PORT or a port on
    /// 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub url: String,
}

/// What the reader thread sends.
enum Msg {
    Stats(Box<Value>),
    Gone(String),
}

pub(crate) fn base_url(u: &str) -> String {
    let u = u.trim_end_matches('/');
    if u.starts_with("http://") || u.starts_with("https://") {
        u.to_string()
    } else if u.parse::<u16>().is_ok() {
        format!("http://127.0.0.1:{u}")
    } else {
        format!("http://{u}")
    }
}

/// Follow the stream, sending each stats document, until it ends or `tx` is dropped.
fn follow(url: String, tx: mpsc::Sender<Msg>) {
    let why = (|| {
        let mut resp = ureq::get(&url).call().map_err(|e| format!("{url}: {e}"))?;
        let mut event = String::new();
        for line in std::io::BufReader::new(resp.body_mut().as_reader()).lines() {
            let line = line.map_err(|e| format!("{url}: {e}"))?;
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ")
                && event == "stats"
            {
                let v: Value =
                    serde_json::from_str(d).map_err(|e| format!("a stats document that is not JSON: {e}"))?;
                if tx.send(Msg::Stats(Box::new(v))).is_err() {
                    return Ok(());
                }
            }
        }
        Err("the manager closed the stream (it stopped?)".to_string())
    })();
    if let Err(e) = why {
        let _ = tx.send(Msg::Gone(e));
    }
}

/// How the NF table is sorted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sort {
    Rx,
    Tx,
    Tag,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Rx => Sort::Tx,
            Sort::Tx => Sort::Tag,
            Sort::Tag => Sort::Rx,
        }
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// A rate as people read it: 1.23M, 45.6k, 789.
fn human(pps: f64) -> String {
    match pps {
        p if p >= 1e6 => format!("{:.2}M", p / 1e6),
        p if p >= 1e3 => format!("{:.1}k", p / 1e3),
        p => format!("{p:.0}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

fn draw(f: &mut ratatui::Frame, doc: Option<&Value>, sort: Sort, status: &str) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let [head, ports, nfs, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(6),
        Constraint::Min(6),
        Constraint::Length(8),
    ])
    .areas(f.area());
    let Some(d) = doc else {
        f.render_widget(Paragraph::new(format!("onvm top — {status}")), head);
        return;
    };
    f.render_widget(
        Paragraph::new(format!(
            "onvm top — up {:.0} s, {} rules, {} events — {status} — q quit, s sort ({sort:?}), p pause",
            num(&d["uptime_s"]),
            d["rules"],
            d["events"]
        )),
        head,
    );
    let rows: Vec<Row> = d["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            Row::new(vec![
                text(&p["no"]),
                text(&p["name"]),
                human(num(&p["rx_pps"])),
                human(num(&p["tx_pps"])),
                text(&p["rx_drop"]),
                text(&p["tx_drop"]),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(rows, [6, 32, 10, 10, 10, 10].map(Constraint::Length))
            .header(Row::new(["port", "name", "rx pps", "tx pps", "rx drop", "tx drop"]).style(bold))
            .block(Block::bordered().title("ports")),
        ports,
    );
    let mut list: Vec<&Value> = d["nfs"].as_array().into_iter().flatten().collect();
    match sort {
        Sort::Rx => list.sort_by(|a, b| num(&b["rx_pps"]).total_cmp(&num(&a["rx_pps"]))),
        Sort::Tx => list.sort_by(|a, b| num(&b["tx_pps"]).total_cmp(&num(&a["tx_pps"]))),
        Sort::Tag => list.sort_by_key(|n| text(&n["tag"])),
    }
    let rows: Vec<Row> = list
        .iter()
        .map(|n| {
            Row::new(vec![
                text(&n["id"]),
                text(&n["tag"]),
                text(&n["service"]),
                text(&n["state"]),
                text(&n["core"]),
                human(num(&n["rx_pps"])),
                human(num(&n["tx_pps"])),
                text(&n["rx_drop"]),
                format!("{}/{}", text(&n["rx_ring"]), text(&n["ring_capacity"])),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(rows, [4, 20, 8, 9, 5, 10, 10, 9, 12].map(Constraint::Length))
            .header(
                Row::new([
                    "id", "tag", "service", "state", "core", "rx pps", "tx pps", "rx drop", "rx ring",
                ])
                .style(bold),
            )
            .block(Block::bordered().title("NFs")),
        nfs,
    );
    let [services, drops] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);
    let rows: Vec<Row> = d["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            Row::new(vec![
                text(&s["id"]),
                text(&s["name"]),
                s["instances"].as_array().map_or(0, Vec::len).to_string(),
                human(num(&s["rx_pps"])),
                human(num(&s["tx_pps"])),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(rows, [4, 16, 9, 10, 10].map(Constraint::Length))
            .header(Row::new(["id", "service", "instances", "rx pps", "tx pps"]).style(bold))
            .block(Block::bordered().title("services")),
        services,
    );
    let mut lines: Vec<Line> = d["drops"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            Line::from(format!(
                "{:<20} {:>12} {:>10}/s",
                text(&x["reason"]),
                text(&x["count"]),
                human(num(&x["per_s"]))
            ))
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::from("none"));
    }
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title("drops")), drops);
}

/// `onvm top`.
pub fn run(a: TopArgs) -> CliResult {
    let url = format!("{}/api/v1/stream", base_url(&a.url));
    let (tx, rx) = mpsc::channel();
    let reader_url = url.clone();
    std::thread::spawn(move || follow(reader_url, tx));
    let mut term = ratatui::try_init().map_err(|e| format!("onvm top needs a terminal: {e}"))?;
    let mut doc: Option<Value> = None;
    let mut sort = Sort::Rx;
    let mut paused = false;
    let mut status = format!("connecting to {url}");
    let result = loop {
        let mut redraw = false;
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Stats(d) if !paused => {
                    doc = Some(*d);
                    status = "live".into();
                    redraw = true;
                }
                Msg::Stats(_) => {}
                Msg::Gone(e) => break_with(&mut status, e, &mut redraw),
            }
        }
        if redraw || doc.is_none() {
            let shown = if paused { "paused" } else { status.as_str() };
            if let Err(e) = term.draw(|f| draw(f, doc.as_ref(), sort, shown)) {
                break Err(e.to_string());
            }
        }
        match event::poll(Duration::from_millis(100)) {
            Ok(true) => {
                if let Ok(Event::Key(k)) = event::read()
                    && k.kind == KeyEventKind::Press
                {
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => break Ok(()),
                        KeyCode::Char('s') => sort = sort.next(),
                        KeyCode::Char('p') => paused = !paused,
                        _ => continue,
                    }
                    let shown = if paused { "paused" } else { status.as_str() };
                    if let Err(e) = term.draw(|f| draw(f, doc.as_ref(), sort, shown)) {
                        break Err(e.to_string());
                    }
                }
            }
            Ok(false) => {}
            Err(e) => break Err(e.to_string()),
        }
    };
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS)
}

/// The stream ended: say so on screen (the last figures stay up until `q`).
fn break_with(status: &mut String, why: String, redraw: &mut bool) {
    *status = format!("disconnected: {why}");
    *redraw = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_ports_and_addresses_all_name_the_endpoint() {
        assert_eq!(base_url("8080"), "http://127.0.0.1:8080");
        assert_eq!(base_url("10.0.0.1:9000"), "http://10.0.0.1:9000");
        assert_eq!(base_url("http://h:1/"), "http://h:1");
    }

    #[test]
    fn rates_read_as_people_read_them() {
        assert_eq!(human(1_234_567.0), "1.23M");
        assert_eq!(human(45_600.0), "45.6k");
        assert_eq!(human(789.0), "789");
    }
}
