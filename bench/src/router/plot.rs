//! Small SVG line charts of `dpbench router` results (rate against frame size, latency
//! percentiles), written without a plotting crate: a few polylines, axes, labels and a
//! legend are all they need.

use std::fmt::Write;

/// One line of a chart: a name and a value per x position (`None`: no point).
pub type Series = (String, Vec<Option<f64>>);

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 160.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart with evenly spaced x positions labelled `x_labels`; a logarithmic y
/// axis when `log_y` (non-positive values are left out there).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    x_labels: &[String],
    series: &[Series],
    log_y: bool,
) -> String {
    let f = |v: f64| if log_y { v.log10() } else { v };
    let vals: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .filter(|v| v.is_finite() && (!log_y || *v > 0.0))
        .collect();
    let (mut lo, mut hi) = if log_y {
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (f(lo).floor(), f(hi).ceil())
    } else {
        (0.0, vals.iter().copied().fold(0.0, f64::max) * 1.1)
    };
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        (lo, hi) = (0.0, 1.0);
    }
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let n = x_labels.len().max(1);
    let x = |i: usize| {
        LEFT + if n == 1 {
            pw / 2.0
        } else {
            pw * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + ph * (1.0 - (f(v) - lo) / (hi - lo));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>
"#,
        LEFT + pw / 2.0,
        esc(title),
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph,
        LEFT + pw / 2.0,
        H - 12.0,
        esc(x_label),
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(y_label)
    );
    for (i, l) in x_labels.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(i),
            TOP + ph + 18.0,
            esc(l)
        );
    }
    let ticks: Vec<f64> = if log_y {
        (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5).map(|k| hi * k as f64 / 5.0).collect()
    };
    for t in ticks {
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#ddd"/><text x="{2}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            y(t),
            LEFT + pw,
            LEFT - 6.0,
            y(t) + 4.0,
            if t >= 100.0 || t == 0.0 {
                format!("{t:.0}")
            } else {
                format!("{t:.2}")
            }
        );
    }
    for (k, (name, v)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let pts: Vec<String> = v
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                p.filter(|p| p.is_finite() && (!log_y || *p > 0.0))
                    .map(|p| (i, p))
            })
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
        }
        let ly = TOP + 10.0 + 18.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{color}" stroke-width="3"/><text x="{3}" y="{4}">{5}</text>"#,
            W - RIGHT + 12.0,
            ly,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_series_with_its_points_inside_the_plot() {
        let svg = line_chart(
            "rate <by> size",
            "bytes",
            "Mpps",
            &["64".into(), "128".into(), "256".into()],
            &[
                ("dataplane".into(), vec![Some(0.9), Some(0.8), None]),
                ("linux".into(), vec![Some(0.5), Some(0.5), Some(0.4)]),
            ],
            false,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(
            svg.matches("<circle").count(),
            5,
            "one per point, none for None"
        );
        assert!(svg.contains("rate &lt;by&gt; size"));
        for c in svg.split("<circle cx=\"").skip(1) {
            let (cx, rest) = c.split_once('"').unwrap();
            let cy = rest.split('"').nth(1).unwrap();
            let (cx, cy): (f64, f64) = (cx.parse().unwrap(), cy.parse().unwrap());
            assert!((LEFT..=W - RIGHT).contains(&cx), "{cx}");
            assert!((TOP..=H - BOTTOM).contains(&cy), "{cy}");
        }
    }

    #[test]
    fn log_axis_has_decade_ticks_and_drops_non_positive_values() {
        let svg = line_chart(
            "latency",
            "percentile",
            "us",
            &["p50".into(), "p99".into()],
            &[
                ("x".into(), vec![Some(5.0), Some(2000.0)]),
                ("y".into(), vec![Some(0.0), Some(20.0)]),
            ],
            true,
        );
        assert!(svg.contains(">1.00<") && svg.contains(">10000<"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 3);
    }
}
