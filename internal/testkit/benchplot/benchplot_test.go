package benchplot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadAndPlot(t *testing.T) {
	series, err := Read(strings.NewReader("series,n,seconds\npushgate,10000,0.7\noriginal,10000,9.5\npushgate,30000,1.8\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 2 || series[0].Name != "pushgate" || len(series[0].Points) != 2 || series[1].Points[0].Y != 9.5 {
		t.Fatalf("series %+v", series)
	}
	out := filepath.Join(t.TempDir(), "p.svg")
	if err := Plot(series, "t", "N", "s", out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), "<svg") || !strings.Contains(string(b), "original") {
		t.Fatalf("plot: %v", err)
	}
	for _, bad := range []string{"", "a,b\n", "s,1,x\n", "s,1,2\ns,y,3\n"} {
		if _, err := Read(strings.NewReader(bad)); err == nil {
			t.Errorf("Read(%q) accepted", bad)
		}
	}
	if err := Plot(series, "t", "N", "s", "p.jpg"); err == nil {
		t.Error("a .jpg plot was accepted")
	}
}
