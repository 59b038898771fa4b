package doclinks

import (
	"bufio"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository's top directory, from this package's.
const repoRoot = "../.."

// TestRepositoryLinks checks every relative link in README.md,
// CHANGELOG.md and the Markdown under docs/.
func TestRepositoryLinks(t *testing.T) {
	files, err := markdownFiles(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, "README.md") {
		t.Fatalf("no README.md among %v: is %s the repository's root?", files, repoRoot)
	}
	for _, p := range check(repoRoot, files) {
		t.Error(p)
	}
}

// markdownFiles lists, relative to root, the top directory's .md files and
// every .md file under docs/.
func markdownFiles(root string) ([]string, error) {
	top, err := filepath.Glob(filepath.Join(root, "*.md"))
	if err != nil {
		return nil, err
	}
	var files []string
	for _, f := range top {
		files = append(files, filepath.Base(f))
	}
	err = filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && d == nil {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files, err
}

var (
	// inlineLink matches [text](target) and ![alt](target), with an
	// optional "title" after the target.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refDef matches a reference definition, [name]: target.
	refDef = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	// codeSpan matches inline code, whose brackets are not links.
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	// heading matches an ATX heading.
	heading = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
)

// link is one link found in a file.
type link struct {
	line   int
	target string
}

// scan returns the links and the heading anchors of a Markdown text,
// leaving out fenced code blocks.
func scan(text string) (links []link, anchors map[string]bool) {
	anchors = map[string]bool{}
	seen := map[string]int{}
	fence := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			a := slug(m[2])
			if k := seen[a]; k > 0 {
				anchors[fmt.Sprintf("%s-%d", a, k)] = true
			} else {
				anchors[a] = true
			}
			seen[a]++
		}
		if m := refDef.FindStringSubmatch(line); m != nil {
			links = append(links, link{n, m[1]})
			continue
		}
		for _, m := range inlineLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			links = append(links, link{n, m[1]})
		}
	}
	return links, anchors
}

var (
	mdLinkText = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	notInSlug  = regexp.MustCompile(`[^\p{L}\p{N}\p{M}\s_-]`)
)

// slug is the anchor GitHub gives a heading: its text lower-cased, without
// punctuation other than - and _, each space a hyphen.
func slug(h string) string {
	h = mdLinkText.ReplaceAllString(h, "$1")
	h = strings.ToLower(strings.TrimSpace(h))
	h = notInSlug.ReplaceAllString(h, "")
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return '-'
		}
		return r
	}, h)
}

// check returns one problem per link in files (relative to root) that does
// not resolve.
func check(root string, files []string) []string {
	var problems []string
	anchorsOf := map[string]map[string]bool{}
	read := func(rel string) ([]link, error) {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		links, anchors := scan(string(b))
		anchorsOf[rel] = anchors
		return links, nil
	}
	for _, f := range files {
		links, err := read(f)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, l := range links {
			if p := resolve(root, f, l.target, anchorsOf, read); p != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: link %s: %s", f, l.line, l.target, p))
			}
		}
	}
	return problems
}

// resolve checks one target of a link in file from, and says what is
// wrong with it ("" when nothing).
func resolve(root, from, target string, anchorsOf map[string]map[string]bool, read func(string) ([]link, error)) string {
	u, err := url.Parse(target)
	if err != nil {
		return err.Error()
	}
	if u.Scheme != "" || u.Host != "" {
		return "" // not relative: not checked here
	}
	file := from
	if u.Path != "" {
		if strings.HasPrefix(u.Path, "/") {
			return "an absolute path: link relative to this file instead"
		}
		file = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(from), u.Path)))
		if strings.HasPrefix(file, "../") {
			return "outside the repository"
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(file))); err != nil {
			return fmt.Sprintf("%s does not exist", file)
		}
	}
	if u.Fragment == "" {
		return ""
	}
	if !strings.HasSuffix(file, ".md") {
		return fmt.Sprintf("#%s: %s is not Markdown, it has no headings to link to", u.Fragment, file)
	}
	anchors, ok := anchorsOf[file]
	if !ok {
		if _, err := read(file); err != nil {
			return err.Error()
		}
		anchors = anchorsOf[file]
	}
	if !anchors[u.Fragment] {
		return fmt.Sprintf("no heading of %s has the anchor #%s", file, u.Fragment)
	}
	return ""
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"Where and why this server differs from the reference", "where-and-why-this-server-differs-from-the-reference"},
		{"Handshake faults for any client: handshake-proxy", "handshake-faults-for-any-client-handshake-proxy"},
		{"0. As it is used: the server binary, one pair after another, timed by tcpdump", "0-as-it-is-used-the-server-binary-one-pair-after-another-timed-by-tcpdump"},
		{"The reference procedure (540 s, cap 120 s)", "the-reference-procedure-540-s-cap-120-s"},
		{"`backoff-check` and [the analysis](x.md)", "backoff-check-and-the-analysis"},
		{"Proxy: handshake-proxy against a direct connection and toxiproxy-server", "proxy-handshake-proxy-against-a-direct-connection-and-toxiproxy-server"},
	} {
		if got := slug(tc.heading); got != tc.want {
			t.Errorf("slug(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

// TestCheck runs the check on a small tree of its own: every kind of broken
// link is reported, with its line, and nothing else is.
func TestCheck(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", strings.Join([]string{
		"# Top",                                 // 1
		"[page](docs/page.md) and [dir](docs/)", // 2: good
		"[gone](docs/gone.md)",                  // 3: missing file
		"[anchor](docs/page.md#usage)",          // 4: good
		"[bad anchor](docs/page.md#nothing)",    // 5: missing anchor
		"[here](#top) [not here](#bottom)",      // 6: good, then missing
		"![pic](docs/pic.svg#x)",                // 7: an anchor in a non-Markdown file
		"[web](https://example.com/gone.md)",    // 8: not relative: not checked
		"`[code](nowhere.md)`",                  // 9: inline code
		"```",                                   // 10
		"[fenced](nowhere.md)",                  // 11: in a fence
		"```",                                   // 12
		"[ref]: docs/missing.md",                // 13: a reference definition
		"[up](../outside.md)",                   // 14: outside the tree
		"[second](docs/page.md#usage-1)",        // 15: the second "Usage"
	}, "\n"))
	write("docs/page.md", "# Page\n\n## Usage\n\ntext\n\n## Usage\n\n[back](../README.md#top)\n")
	write("docs/pic.svg", "<svg/>")
	files, err := markdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"README.md", "docs/page.md"}; !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	got := check(root, files)
	want := []string{
		"README.md:3: link docs/gone.md: docs/gone.md does not exist",
		"README.md:5: link docs/page.md#nothing: no heading of docs/page.md has the anchor #nothing",
		"README.md:6: link #bottom: no heading of README.md has the anchor #bottom",
		"README.md:7: link docs/pic.svg#x: #x: docs/pic.svg is not Markdown, it has no headings to link to",
		"README.md:13: link docs/missing.md: docs/missing.md does not exist",
		"README.md:14: link ../outside.md: outside the repository",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
