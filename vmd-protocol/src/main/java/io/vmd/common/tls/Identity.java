package io.vmd.common.tls;

import java.security.cert.X509Certificate;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;

/**
 * Who holds a certificate of the cluster's CA: its name (the subject's CN) and its {@link Role} (the
 * subject's OU), as the CA signed them.
 */
public record Identity(String name, Role role) {
  /** The longest name a certificate may carry (it becomes an owner id and appears in logs). */
  public static final int MAX_NAME = 64;

  public Identity {
    if (!validName(name)) {
      throw new IllegalArgumentException("certificate name '" + name
          + "': use 1-" + MAX_NAME + " characters of letters, digits, '.', '_', ':' or '-'");
    }
  }

  /** Letters, digits, '.', '_', ':' and '-', 1 to {@link #MAX_NAME} of them. */
  public static boolean validName(String name) {
    return name != null && !name.isEmpty() && name.length() <= MAX_NAME && name.matches("[A-Za-z0-9._:-]+");
  }

  /** The identity a certificate names; IllegalArgumentException if it names none. */
  public static Identity of(X509Certificate cert) {
    String cn = null;
    String ou = null;
    try {
      for (Rdn rdn : new LdapName(cert.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          cn = rdn.getValue().toString();
        } else if (rdn.getType().equalsIgnoreCase("OU")) {
          ou = rdn.getValue().toString();
        }
      }
    } catch (InvalidNameException e) {
      throw new IllegalArgumentException("unreadable certificate subject: " + e.getMessage(), e);
    }
    if (cn == null || ou == null) {
      throw new IllegalArgumentException("certificate '" + cert.getSubjectX500Principal().getName()
          + "' names no VMD identity (CN and OU)");
    }
    return new Identity(cn, Role.parse(ou));
  }

  @Override
  public String toString() {
    return role.label() + " " + name;
  }
}
