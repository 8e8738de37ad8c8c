// Package bad imports a package that does not exist.
package bad

import _ "example.com/broken/missing"
