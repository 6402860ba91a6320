//! The little XML vSphere's SOAP API needs: answers read into a tree of elements (local names,
//! namespaces dropped), and text escaped for requests.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One element: its local name, attributes (names as written, prefix included), text and
/// children.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    pub(crate) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub(crate) fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The descendant reached through `names`, first match at each step.
    pub(crate) fn path(&self, names: &[&str]) -> Option<&Node> {
        names.iter().try_fold(self, |node, name| node.child(name))
    }

    /// The text of the descendant at `names`.
    pub(crate) fn text_at(&self, names: &[&str]) -> Option<&str> {
        self.path(names).map(|n| n.text.as_str())
    }

    /// An attribute without a namespace prefix (`type` of a managed object reference).
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `xsi:type` of the element (whatever the prefix), without the type's own prefix.
    pub(crate) fn xsi_type(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n.rsplit_once(':').is_some_and(|(_, local)| local == "type"))
            .map(|(_, t)| t.rsplit_once(':').map_or(t.as_str(), |(_, local)| local))
    }
}

/// Parses a whole document into its root element.
pub(crate) fn parse(bytes: &[u8]) -> Result<Node, String> {
    let mut reader = Reader::from_reader(bytes);
    let mut stack: Vec<Node> = Vec::new();
    let mut buffer = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(start) => stack.push(element(&start)?),
            Event::Empty(start) => {
                let node = element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced XML")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::Text(text) => {
                if let Some(node) = stack.last_mut() {
                    node.text
                        .push_str(&text.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(text) => {
                if let Some(node) = stack.last_mut() {
                    node.text
                        .push_str(&text.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(|e| e.to_string())?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_owned()
                    }
                };
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&resolved);
                }
            }
            Event::Eof => return Err("the XML document ended early".to_owned()),
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) | Event::Comment(_) => {}
        }
        buffer.clear();
    }
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> Result<Node, String> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::default())
            .map_err(|e| e.to_string())?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Node {
        name,
        attributes,
        ..Node::default()
    })
}

/// `text` safe inside an element or a double-quoted attribute.
pub(crate) fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_trees() {
        let doc = br#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="x" xmlns:xsi="y">
            <soapenv:Body><R xmlns="urn:vim25"><returnval type="Task">task-1</returnval>
            <val xsi:type="xsd:string">a &amp; b &#65;</val><e/>
            <m XMLSchema-instance:type="ManagedObjectReference" type="Datastore">ds-1</m>
            </R></soapenv:Body></soapenv:Envelope>"#;
        let root = parse(doc).expect("parses");
        assert_eq!(root.name, "Envelope");
        let r = root.path(&["Body", "R"]).expect("R");
        assert_eq!(r.text_at(&["returnval"]), Some("task-1"));
        assert_eq!(
            r.path(&["returnval"]).and_then(|n| n.attribute("type")),
            Some("Task")
        );
        let val = r.child("val").expect("val");
        assert_eq!(
            (val.text.as_str(), val.xsi_type()),
            ("a & b A", Some("string"))
        );
        assert!(r.child("e").is_some());
        let m = r.child("m").expect("m");
        assert_eq!(
            (m.attribute("type"), m.xsi_type()),
            (Some("Datastore"), Some("ManagedObjectReference"))
        );
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<a>").is_err());
        assert_eq!(escape("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
    }
}
