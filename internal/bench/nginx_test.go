package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestNginxConfig(t *testing.T) {
	t.Parallel()
	conf, err := nginxConfig(nginxParams{Dir: "/tmp/b/nginx", Root: "/tmp/b/www", Port: 18080, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"daemon off;",
		"master_process on;",
		"worker_processes 2;",
		`pid "/tmp/b/nginx/nginx.pid";`,
		`error_log "/tmp/b/nginx/nginx-error.log" warn;`,
		"access_log off;",
		`client_body_temp_path "/tmp/b/nginx/client_body";`,
		`proxy_temp_path "/tmp/b/nginx/proxy";`,
		`fastcgi_temp_path "/tmp/b/nginx/fastcgi";`,
		`uwsgi_temp_path "/tmp/b/nginx/uwsgi";`,
		`scgi_temp_path "/tmp/b/nginx/scgi";`,
		"text/calendar ics;",
		"etag on;",
		"listen 127.0.0.1:18080;",
		`root "/tmp/b/www";`,
		"location /feeds/ {",
		"gzip_static on;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginxConfig() lacks %q:\n%s", want, conf)
		}
	}
	if strings.Count(conf, "{") != strings.Count(conf, "}") {
		t.Errorf("nginxConfig() has unbalanced braces:\n%s", conf)
	}
}

func TestNginxConfigRejects(t *testing.T) {
	t.Parallel()
	good := nginxParams{Dir: "/tmp/b", Root: "/tmp/b/www", Port: 80, Workers: 1}
	tests := []struct {
		name   string
		change func(*nginxParams)
	}{
		{"relative dir", func(p *nginxParams) { p.Dir = "b" }},
		{"quote in root", func(p *nginxParams) { p.Root = `/tmp/"x` }},
		{"variable in root", func(p *nginxParams) { p.Root = "/tmp/$x" }},
		{"port zero", func(p *nginxParams) { p.Port = 0 }},
		{"port too big", func(p *nginxParams) { p.Port = 70000 }},
		{"no workers", func(p *nginxParams) { p.Workers = 0 }},
	}
	for _, tt := range tests {
		p := good
		tt.change(&p)
		if _, err := nginxConfig(p); err == nil {
			t.Errorf("%s: nginxConfig(%+v) error = nil; want an error", tt.name, p)
		}
	}
}

// TestNginxConfigSyntax has nginx itself check the generated file, when it
// is installed.
func TestNginxConfigSyntax(t *testing.T) {
	t.Parallel()
	bin, err := findNginx("")
	if err != nil {
		t.Skipf("nginx not installed: %v", err)
	}
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := nginxConfig(nginxParams{Dir: dir, Root: www, Port: port, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t: %v\n%s\nconfig:\n%s", err, out, conf)
	}
}
