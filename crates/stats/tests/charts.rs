//! The charts as SVG snapshots: a change to a chart's drawing shows in review.

use farol_stats::svg::{Bars, Line, Stacked, TimeSeries};

#[test]
fn time_series_with_a_gap_and_marks() {
    let chart = TimeSeries {
        title: "Infected hosts per 1,000 internet users a day, by week".into(),
        y_label: "per 1,000 internet users".into(),
        x_labels: (22..30).map(|w| format!("2024-W{w}")).collect(),
        lines: vec![
            Line {
                name: "PT".into(),
                values: vec![Some(0.16), Some(0.17), Some(0.15), None, Some(0.11), Some(0.09), Some(0.1), Some(0.08)],
            },
            Line { name: "countries in the data".into(), values: vec![Some(0.03); 8] },
        ],
        marks: vec![(3, "clean-up campaign".into()), (4, "Mozi outbreak".into())],
    };
    insta::assert_snapshot!(chart.render());
}

#[test]
fn bars() {
    let chart = Bars {
        title: "Autonomous systems with the most infected addresses a day".into(),
        unit: "distinct infected addresses on an average day".into(),
        bars: vec![
            ("AS3243".into(), 298.0),
            ("AS2860".into(), 266.0),
            ("A <very> long name & more, longer than the space".into(), 12.5),
        ],
    };
    insta::assert_snapshot!(chart.render());
}

#[test]
fn stacked_shares() {
    let chart = Stacked {
        title: "Malware families' shares of infected addresses, by month".into(),
        x_labels: vec!["2024-04".into(), "2024-05".into(), "2024-06".into()],
        series: vec![
            ("andromeda".into(), vec![0.5, 0.4, 0.2]),
            ("mozi".into(), vec![0.0, 0.1, 0.6]),
            ("other".into(), vec![0.5, 0.5, 0.2]),
        ],
    };
    insta::assert_snapshot!(chart.render());
}
