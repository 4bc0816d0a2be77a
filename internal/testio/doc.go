// Package testio holds the readers and writers tests share: a buffer that
// servers write logs into while the test reads them, and a request body that
// stalls the way a slow or hostile client's does.
package testio
