// Package analytics records privacy-friendly product events and summarises them from rollups.
package analytics

// Store is what the database keeps for analytics. (Filled in by the analytics work.)
type Store interface{}
