//! The first rows of a report's first query, as a message shows them (`{table}`) and as an
//! alert reads them (its first cell): column names and cell texts, numbers marked so that
//! tables can right-align them.

/// One cell of a preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A number, as text (`1234`, `12.50`).
    Number(String),
    /// Anything else, as shown in a CSV file (dates `2026-11-30`, booleans `TRUE`).
    Text(String),
}

impl Value {
    /// The text shown (empty for NULL).
    pub fn text(&self) -> &str {
        match self {
            Value::Null => "",
            Value::Number(s) | Value::Text(s) => s,
        }
    }
}

/// The first rows of a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// Column names.
    pub columns: Vec<String>,
    /// The rows kept, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
}

impl Preview {
    /// The first cell of the first row: `None` for NULL or no row.
    pub fn first_value(&self) -> Option<String> {
        match self.rows.first().and_then(|r| r.first()) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.text().to_string()),
        }
    }
}
