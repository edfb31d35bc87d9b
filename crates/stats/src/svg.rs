//! SVG charts: a time series with annotations, horizontal bars, stacked shares. Each is a
//! complete `<svg>` element with labelled axes and units, styled inline so that it stands
//! alone in a page, a report or a file; every text is escaped.

use std::fmt::Write as _;

/// Okabe and Ito's palette, which readers with any colour vision tell apart.
const COLORS: [&str; 8] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 36.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 52.0;

/// A line of a time series: one value per x position, gaps where there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A time series chart.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub title: String,
    /// The y axis: what is measured and in which unit.
    pub y_label: String,
    /// One label per x position (periods).
    pub x_labels: Vec<String>,
    pub lines: Vec<Line>,
    /// Vertical marks: (x position, text), for interventions and outbreaks.
    pub marks: Vec<(usize, String)>,
}

/// Text for SVG and HTML: `&`, `<`, `>`, and both quotes escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as a chart shows it: no more digits than it needs.
pub fn number(v: f64) -> String {
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s };
    if s == "-0" { "0".into() } else { s }
}

/// The top of an axis and its step: 1, 2, 2.5 or 5 times a power of ten, about five steps.
fn axis(max: f64) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 0.2);
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

fn open(out: &mut String, title: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{t}" font-family="system-ui, sans-serif" font-size="12">"#,
        t = escape(title)
    );
    let _ = write!(out, r#"<title>{}</title>"#, escape(title));
    let _ = write!(out, r##"<rect width="{WIDTH}" height="{height}" fill="#fff"/>"##);
    let _ = write!(
        out,
        r##"<text x="{LEFT}" y="20" font-size="14" font-weight="600" fill="#222">{}</text>"##,
        escape(title)
    );
}

/// Ends the chart, one element a line, so that a change to a chart is a readable diff.
fn close(mut out: String) -> String {
    out.push_str("</svg>\n");
    out.replace("><", ">\n<")
}

fn legend(out: &mut String, names: &[&str], y: f64) {
    let mut x = LEFT;
    for (i, name) in names.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let _ = write!(out, r#"<rect x="{x}" y="{}" width="10" height="10" fill="{color}"/>"#, y - 9.0);
        let _ = write!(out, r##"<text x="{}" y="{y}" fill="#222">{}</text>"##, x + 14.0, escape(name));
        x += 24.0 + 7.0 * name.chars().count() as f64;
    }
}

/// Which x labels to print: at most about eight, evenly spaced.
fn label_every(n: usize) -> usize {
    n.div_ceil(8).max(1)
}

impl TimeSeries {
    pub fn render(&self) -> String {
        let n = self.x_labels.len().max(1);
        let max = self.lines.iter().flat_map(|l| l.values.iter().flatten()).fold(0.0f64, |m, v| m.max(*v));
        let (top, step) = axis(max);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let x = |i: usize| LEFT + if n == 1 { plot_w / 2.0 } else { plot_w * i as f64 / (n - 1) as f64 };
        let y = |v: f64| TOP + plot_h * (1.0 - v / top);
        let mut out = String::new();
        open(&mut out, &self.title, HEIGHT);
        // The y axis: grid lines, values, and what they measure.
        let mut v = 0.0;
        while v <= top + step / 2.0 {
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y(v) + 4.0,
                number(v),
                y = y(v)
            );
            v += step;
        }
        let _ = write!(
            out,
            r##"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="#555">{}</text>"##,
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        let every = label_every(n);
        for (i, label) in self.x_labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
                x(i),
                HEIGHT - BOTTOM + 16.0,
                escape(label)
            );
        }
        for (k, (at, text)) in self.marks.iter().enumerate() {
            // Labels alternate between two rows, so that close marks stay readable.
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}" stroke="#888" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#444">{}</text>"##,
                HEIGHT - BOTTOM,
                x(*at) + 4.0,
                TOP + 12.0 + 14.0 * (k % 2) as f64,
                escape(text),
                x = x(*at)
            );
        }
        for (li, line) in self.lines.iter().enumerate() {
            let color = COLORS[li % COLORS.len()];
            // A gap splits the line into runs.
            let mut path = String::new();
            let mut pen_down = false;
            for (i, v) in line.values.iter().enumerate() {
                match v {
                    Some(v) => {
                        let _ = write!(path, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x(i), y(*v));
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            let _ = write!(
                out,
                r#"<path d="{}" fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round"/>"#,
                path.trim_end()
            );
        }
        let names: Vec<&str> = self.lines.iter().map(|l| l.name.as_str()).collect();
        legend(&mut out, &names, HEIGHT - 12.0);
        close(out)
    }
}

/// Horizontal bars, the largest first as given.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    pub title: String,
    /// What the bars measure, with its unit.
    pub unit: String,
    pub bars: Vec<(String, f64)>,
}

impl Bars {
    pub fn render(&self) -> String {
        const ROW: f64 = 22.0;
        const LABELS: f64 = 220.0;
        let height = TOP + ROW * self.bars.len().max(1) as f64 + 40.0;
        let max = self.bars.iter().fold(0.0f64, |m, (_, v)| m.max(*v));
        let (top, step) = axis(max);
        let plot_w = WIDTH - LABELS - RIGHT - 40.0;
        let x = |v: f64| LABELS + plot_w * v / top;
        let mut out = String::new();
        open(&mut out, &self.title, height);
        let bottom = TOP + ROW * self.bars.len().max(1) as f64;
        let mut v = 0.0;
        while v <= top + step / 2.0 {
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{bottom}" stroke="#e3e3e3"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
                bottom + 14.0,
                number(v),
                x = x(v)
            );
            v += step;
        }
        for (i, (label, value)) in self.bars.iter().enumerate() {
            let y = TOP + ROW * i as f64;
            let shown: String = if label.chars().count() > 32 {
                label.chars().take(31).chain(['…']).collect()
            } else {
                label.clone()
            };
            let _ = write!(
                out,
                r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#222">{}</text><rect x="{LABELS}" y="{:.1}" width="{:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{:.1}" fill="#222">{}</text>"##,
                LABELS - 6.0,
                y + 15.0,
                escape(&shown),
                y + 4.0,
                (x(*value) - LABELS).max(0.0),
                ROW - 8.0,
                COLORS[0],
                x(*value) + 4.0,
                y + 15.0,
                number(*value)
            );
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
            LABELS + plot_w / 2.0,
            bottom + 32.0,
            escape(&self.unit)
        );
        close(out)
    }
}

/// Stacked columns of shares (each column sums to at most 1), one per period.
#[derive(Debug, Clone, PartialEq)]
pub struct Stacked {
    pub title: String,
    pub x_labels: Vec<String>,
    /// (name, share per period).
    pub series: Vec<(String, Vec<f64>)>,
}

impl Stacked {
    pub fn render(&self) -> String {
        let n = self.x_labels.len().max(1);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let slot = plot_w / n as f64;
        let mut out = String::new();
        open(&mut out, &self.title, HEIGHT);
        for pct in [0, 25, 50, 75, 100] {
            let y = TOP + plot_h * (1.0 - f64::from(pct) / 100.0);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555">{pct}%</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0
            );
        }
        let _ = write!(
            out,
            r##"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="#555">share of infected addresses</text>"##,
            TOP + plot_h / 2.0
        );
        for i in 0..self.x_labels.len() {
            let mut base = 0.0;
            for (si, (name, shares)) in self.series.iter().enumerate() {
                let share = shares.get(i).copied().unwrap_or(0.0).clamp(0.0, 1.0 - base);
                if share > 0.0 {
                    let _ = write!(
                        out,
                        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}%</title></rect>"#,
                        LEFT + slot * i as f64 + slot * 0.1,
                        TOP + plot_h * (1.0 - base - share),
                        slot * 0.8,
                        plot_h * share,
                        COLORS[si % COLORS.len()],
                        escape(name),
                        number(share * 100.0)
                    );
                }
                base += share;
            }
        }
        let every = label_every(n);
        for (i, label) in self.x_labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
                LEFT + slot * (i as f64 + 0.5),
                HEIGHT - BOTTOM + 16.0,
                escape(label)
            );
        }
        let names: Vec<&str> = self.series.iter().map(|(n, _)| n.as_str()).collect();
        legend(&mut out, &names, HEIGHT - 12.0);
        close(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        assert_eq!(axis(0.0), (1.0, 0.2));
        assert_eq!(axis(7.3), (8.0, 2.0));
        assert_eq!(axis(0.42), (0.5, 0.1));
        assert_eq!(axis(1234.0), (1250.0, 250.0));
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(-0.0001), "0");
    }

    #[test]
    fn text_is_escaped() {
        let svg =
            Bars { title: "<script>".into(), unit: "a & b".into(), bars: vec![("\"x\" <y>".into(), 1.0)] }.render();
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
        assert!(svg.contains("&quot;x&quot; &lt;y&gt;") && svg.contains("a &amp; b"));
    }
}
