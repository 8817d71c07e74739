module github.com/calhook/calhook

go 1.26.8
