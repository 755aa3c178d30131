//! A small RFC 4180 reader: fields separated by commas; a field in double quotes may hold commas,
//! line breaks and `""` for a quote. Errors carry the line number, unlike lenient readers that run an
//! unterminated quote to the end of the file.

pub struct Record {
    /// Line on which the record starts (1-based).
    pub line: usize,
    pub fields: Vec<String>,
}

/// Parses every non-empty record; the error text starts with the line number.
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some(',') => fields.push(std::mem::take(&mut field)),
                Some('"') if field.is_empty() => {
                    let quote_line = line;
                    loop {
                        match chars.next() {
                            None => {
                                return Err(format!(
                                    "{quote_line}: unterminated quote: the field opened here never closes"
                                ))
                            }
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some(',') | Some('\n') | Some('\r') => {}
                        Some(c) => {
                            return Err(format!(
                                "{line}: unexpected {c:?} after a closing quote (write a quote inside a quoted field as \"\")"
                            ))
                        }
                    }
                }
                Some(c) => field.push(c),
            }
        }
        if !(fields.len() == 1 && fields[0].trim().is_empty()) {
            records.push(Record {
                line: start_line,
                fields,
            });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_commas_and_line_breaks() {
        let text = "image,caption\r\na.jpg,\"A dog , a \"\"ball\"\"\"\n\nb.jpg,\"two\nlines\"\nc.jpg,plain\n";
        let records = parse(text).unwrap();
        let lines: Vec<_> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 4, 6]);
        assert_eq!(records[1].fields, ["a.jpg", "A dog , a \"ball\""]);
        assert_eq!(records[2].fields, ["b.jpg", "two\nlines"]);
        assert_eq!(records[3].fields, ["c.jpg", "plain"]);
    }

    #[test]
    fn unterminated_quote_names_its_line() {
        let err = parse("image,caption\na.jpg,ok\nb.jpg,\"never closed\nc.jpg,x\n").err();
        assert_eq!(
            err.as_deref(),
            Some("3: unterminated quote: the field opened here never closes")
        );
    }
}
