/** The NBD gateway: one export per namespace. Implemented by the NBD gateway issue. */
package io.vmd.nbd;
