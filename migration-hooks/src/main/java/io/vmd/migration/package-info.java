/** Migration hooks: swap-offset reads, Agile migration, working sets. Implemented by the migration issue. */
package io.vmd.migration;
