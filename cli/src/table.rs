//! Plain-text tables with left-aligned, space-padded columns (as Kafka's tools print them).

/// Renders `rows` under `headers`; every column is as wide as its widest cell.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            } else {
                widths.push(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows.iter()) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `[1,2,3]`, Kafka's way of printing a list of ids.
pub fn id_list<T: std::fmt::Display>(ids: impl IntoIterator<Item = T>) -> String {
    let parts: Vec<String> = ids.into_iter().map(|i| i.to_string()).collect();
    format!("[{}]", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_to_the_widest_cell() {
        let out = render(
            &["A", "Long"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        );
        assert_eq!(out, "A    Long\nxyz  1\nq    22\n");
    }

    #[test]
    fn id_lists_have_no_spaces() {
        assert_eq!(id_list([1, 2, 3]), "[1,2,3]");
        assert_eq!(id_list(Vec::<i32>::new()), "[]");
    }
}
