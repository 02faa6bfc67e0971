package tablets

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// page is an HTML page as the tablet's browser holds it: what it links to,
// its forms and their current values.
type page struct {
	url  *url.URL
	root *html.Node
}

func parsePage(u *url.URL, body []byte) (*page, error) {
	root, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", u.Path, err)
	}
	return &page{url: u, root: root}, nil
}

// walk calls fn on every element under n, in document order, until fn
// returns false.
func walk(n *html.Node, fn func(*html.Node) bool) bool {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && !fn(c) {
			return false
		}
		if !walk(c, fn) {
			return false
		}
	}
	return true
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return strings.Contains(" "+attr(n, "class")+" ", " "+class+" ")
}

// text is the visible text under n, spaces collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	var collect func(*html.Node)
	collect = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			collect(c)
		}
	}
	collect(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// resolve makes a link on the page into a path and query on the node.
func (p *page) resolve(ref string) (string, bool) {
	u, err := p.url.Parse(ref)
	if err != nil || u.Host != p.url.Host || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false
	}
	if r := u.RequestURI(); strings.HasPrefix(r, "/") && !strings.HasPrefix(r, "//") {
		return r, true
	}
	return "", false
}

// byID finds the element with the id.
func (p *page) byID(id string) *html.Node {
	var found *html.Node
	walk(p.root, func(n *html.Node) bool {
		if attr(n, "id") == id {
			found = n
			return false
		}
		return true
	})
	return found
}

// links lists the page's links whose path starts with prefix, in order.
// With under set, only links inside the element of that id count.
func (p *page) links(under, prefix string) []string {
	root := p.root
	if under != "" {
		if root = p.byID(under); root == nil {
			return nil
		}
	}
	var out []string
	walk(root, func(n *html.Node) bool {
		if n.Data == "a" {
			if ref, ok := p.resolve(attr(n, "href")); ok && strings.HasPrefix(ref, prefix) {
				out = append(out, ref)
			}
		}
		return true
	})
	return out
}

// assets are what a browser loads with the page: stylesheets, icons and
// scripts.
func (p *page) assets() []string {
	var out []string
	walk(p.root, func(n *html.Node) bool {
		var ref string
		switch {
		case n.Data == "link" && (attr(n, "rel") == "stylesheet" || attr(n, "rel") == "icon"):
			ref = attr(n, "href")
		case n.Data == "script":
			ref = attr(n, "src")
		}
		if r, ok := p.resolve(ref); ok && ref != "" {
			out = append(out, r)
		}
		return true
	})
	return out
}

// datalist lists the options of a <datalist>: what a health worker may
// pick while typing.
func (p *page) datalist(id string) []string {
	n := p.byID(id)
	if n == nil {
		return nil
	}
	var out []string
	walk(n, func(o *html.Node) bool {
		if o.Data == "option" {
			out = append(out, attr(o, "value"))
		}
		return true
	})
	return out
}

// options lists the non-empty choices of the <select> named name.
func (p *page) options(name string) []string {
	var out []string
	walk(p.root, func(n *html.Node) bool {
		if n.Data != "select" || attr(n, "name") != name {
			return true
		}
		walk(n, func(o *html.Node) bool {
			if v := optionValue(o); o.Data == "option" && v != "" {
				out = append(out, v)
			}
			return true
		})
		return false
	})
	return out
}

// fieldErrors are the messages shown next to fields and above forms.
func (p *page) fieldErrors() []string {
	var out []string
	walk(p.root, func(n *html.Node) bool {
		if hasClass(n, "ferr") {
			out = append(out, text(n))
		}
		return true
	})
	return out
}

// form is a form on the page, with the values a browser would send if no
// field were touched.
type form struct {
	action string // path on the node
	method string
	values url.Values
}

// form finds the first form posting to a path that starts with prefix.
func (p *page) form(prefix string) (*form, bool) {
	var found *form
	walk(p.root, func(n *html.Node) bool {
		if n.Data != "form" {
			return true
		}
		action, ok := p.resolve(attr(n, "action"))
		if !ok || !strings.HasPrefix(action, prefix) {
			return true
		}
		found = &form{action: action, method: strings.ToUpper(attr(n, "method")), values: url.Values{}}
		if found.method == "" {
			found.method = "GET"
		}
		walk(n, func(f *html.Node) bool {
			name := attr(f, "name")
			if name == "" {
				return true
			}
			switch f.Data {
			case "input":
				switch attr(f, "type") {
				case "submit", "button", "image", "reset", "file":
				case "checkbox", "radio":
					if _, checked := attrOK(f, "checked"); checked {
						v := attr(f, "value")
						if v == "" {
							v = "on"
						}
						found.values.Add(name, v)
					}
				default:
					found.values.Add(name, attr(f, "value"))
				}
			case "textarea":
				found.values.Add(name, text(f))
			case "select":
				found.values.Add(name, selected(f))
			}
			return true
		})
		return false
	})
	return found, found != nil
}

func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// selected is a single <select>'s value: the option marked selected, or
// the first.
func selected(n *html.Node) string {
	first, chosen := "", ""
	seen := false
	walk(n, func(o *html.Node) bool {
		if o.Data != "option" {
			return true
		}
		if !seen {
			first, seen = optionValue(o), true
		}
		if _, ok := attrOK(o, "selected"); ok {
			chosen = optionValue(o)
			return false
		}
		return true
	})
	if chosen != "" {
		return chosen
	}
	return first
}

func optionValue(o *html.Node) string {
	if v, ok := attrOK(o, "value"); ok {
		return v
	}
	return text(o)
}
