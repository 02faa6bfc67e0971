package webui_test

import (
	"database/sql"

	_ "modernc.org/sqlite"
)

// rawDB opens the store's file with a plain read-only connection.
func (n *testNode) rawDB() *sql.DB {
	n.tb.Helper()
	db, err := sql.Open("sqlite", "file:"+n.Path+"?_pragma=busy_timeout(5000)&mode=ro")
	if err != nil {
		n.tb.Fatal(err)
	}
	n.tb.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db
}
