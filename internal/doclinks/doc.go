// Package doclinks holds the test that every relative link in the
// repository's Markdown (README.md, CHANGELOG.md and docs/) resolves: the
// file or directory it names exists, and the #anchor it names is a heading
// of that file (as GitHub makes anchors from headings). It runs with
// go test ./..., so CI checks the links with no tool of its own.
package doclinks
