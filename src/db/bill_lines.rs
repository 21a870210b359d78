//! A bill's lines as stored in `bills.lines`: one JSON array per bill, written once with the
//! bill and only ever read with it (a row per line made the line table the biggest cost of a
//! billing run). Prices stay exact decimal strings and amounts whole fen, as everywhere else.

use serde::{Deserialize, Serialize};

use super::{DbResult, corrupt};
use crate::domain::rating::BillLine;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLine {
    pub line_no: i32,
    pub kind: String,
    pub volume_m3: i64,
    pub unit_price: String,
    pub amount_fen: i64,
}

/// The JSON text of `lines`, numbered from 1 in bill order.
pub fn encode(lines: &[BillLine]) -> DbResult<String> {
    let stored = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            Ok(StoredLine {
                line_no: i32::try_from(i + 1).map_err(|e| corrupt("bill line", e))?,
                kind: line.kind.as_str().to_owned(),
                volume_m3: i64::try_from(line.volume_m3).map_err(|e| corrupt("bill line", e))?,
                unit_price: line.unit_price.to_string(),
                amount_fen: line.amount.to_fen(),
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    serde_json::to_string(&stored).map_err(|e| corrupt("bill lines", e))
}

/// The lines of a stored bill, in line order.
pub fn decode(json: &str) -> DbResult<Vec<StoredLine>> {
    let mut lines: Vec<StoredLine> =
        serde_json::from_str(json).map_err(|e| corrupt("bill lines", e))?;
    lines.sort_by_key(|line| line.line_no);
    Ok(lines)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::money::{Money, UnitPrice};
    use crate::domain::rating::LineKind;

    #[test]
    fn lines_round_trip_exactly() {
        let lines = vec![
            BillLine {
                kind: LineKind::Sewage,
                volume_m3: 12,
                unit_price: UnitPrice::parse("0.9500").unwrap(),
                amount: Money::parse("11.40").unwrap(),
            },
            BillLine {
                kind: LineKind::ResourceTax,
                volume_m3: 12,
                unit_price: UnitPrice::parse("0.2").unwrap(),
                amount: Money::parse("-2.40").unwrap(),
            },
        ];
        let decoded = decode(&encode(&lines).unwrap()).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].line_no, 1);
        assert_eq!(decoded[0].kind, "SEWAGE");
        assert_eq!(decoded[0].unit_price, "0.9500");
        assert_eq!(decoded[0].amount_fen, 1140);
        assert_eq!(decoded[1].amount_fen, -240);
    }

    #[test]
    fn lines_the_migration_wrote_are_read_in_line_order() {
        let json = r#"[{"line_no":2,"kind":"SEWAGE","volume_m3":3,"unit_price":"0.95","amount_fen":285},
                       {"line_no":1,"kind":"WATER","volume_m3":3,"unit_price":"2.4","amount_fen":720}]"#;
        let decoded = decode(json).unwrap();
        assert_eq!(decoded[0].kind, "WATER");
        assert_eq!(decoded[1].line_no, 2);
    }

    #[test]
    fn a_damaged_value_is_reported_not_guessed() {
        assert!(decode("[{\"line_no\":1}]").is_err());
        assert!(decode("").is_err());
    }
}
